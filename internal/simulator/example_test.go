package simulator_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/apinizer-rotation/rotator/internal/simulator"
)

// A test starts a simulator, seeds a credential, lets the code under test
// change its password over HTTP, then asks the simulator what it holds.
func ExampleStart() {
	sim, err := simulator.Start(simulator.Config{
		Tokens:       []string{"test-token"},
		Environments: []string{"production"},
	})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	sim.SetCredential("MyProject", "api-user", "Initial-Passw0rd")

	req, _ := http.NewRequest(http.MethodPatch,
		sim.URL+"/apiops/projects/MyProject/credentials/api-user/",
		strings.NewReader(`{"password":"Rotated-Passw0rd"}`))
	req.Header.Set("Authorization", "Bearer test-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)

	password, _ := sim.Password("MyProject", "api-user")
	fmt.Println(resp.StatusCode, password, sim.PasswordChanges("MyProject", "api-user"))
	fmt.Println(string(body))
	// Output:
	// 200 Rotated-Passw0rd 1
	// {"status":"SUCCESS","deploymentResult":{"success":true,"message":"Deployment completed successfully","environmentResults":[{"environmentName":"production","success":true,"message":"Deployed successfully"}]}}
}

// Faults script what a proxy or an overloaded server answers: here Apinizer
// stores the password, but the client sees a gateway timeout.
func ExampleServer_AddFaults() {
	sim, err := simulator.Start(simulator.Config{Tokens: []string{"test-token"}})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	sim.SetCredential("MyProject", "api-user", "Initial-Passw0rd")
	sim.AddFaults(simulator.Fault{Status: http.StatusGatewayTimeout, Apply: true})

	req, _ := http.NewRequest(http.MethodPatch,
		sim.URL+"/apiops/projects/MyProject/credentials/api-user/",
		strings.NewReader(`{"password":"Rotated-Passw0rd"}`))
	req.Header.Set("Authorization", "Bearer test-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	password, _ := sim.Password("MyProject", "api-user")
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), password)
	// Output:
	// 504 text/html Rotated-Passw0rd
}
