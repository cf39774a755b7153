package simulator

import (
	"net/http"
	"testing"
)

func TestDeployFailuresFailMatchingEntriesButSaveThePassword(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		username string
		deployed bool
		body     string
	}{
		{
			name: "one environment fails with the default reason",
			cfg: Config{DeployFailures: []DeployFailure{
				{Environment: "staging"}}},
			body: `{"status":"SUCCESS","resultMessage":"Credential saved successfully but ` +
				`deployment to environments failed","deploymentResult":{"success":false,` +
				`"message":"Deployment failed for one or more environments",` +
				`"environmentResults":[{"environmentName":"production","success":true,` +
				`"message":"Deployed successfully"},{"environmentName":"staging",` +
				`"success":false,"message":"Connection refused"}]}}`,
		},
		{
			name: "one environment fails in the seed envelope",
			cfg: Config{Envelope: EnvelopeSeed, Environments: []string{"prod"},
				DeployFailures: []DeployFailure{{Environment: "prod", Message: "timeout"}}},
			body: `{"success":true,"deploymentResult":{"success":false,` +
				`"message":"Deployment failed for one or more environments",` +
				`"environmentResults":[{"environmentName":"prod","success":false,` +
				`"message":"timeout"}]}}`,
		},
		{
			name: "one pod fails",
			cfg: Config{Shape: ShapePods, Environments: []string{"prod"},
				DeployFailures: []DeployFailure{{Environment: "prod",
					Pod: PodName("prod", 1), Message: "Read timed out"}}},
			body: `{"status":"SUCCESS","resultMessage":"Credential saved successfully but ` +
				`deployment to environments failed","deploymentResult":{"success":false,` +
				`"responseTime":0,"detailList":[{"envName":"prod","podName":"prod-worker-0",` +
				`"podIp":"10.0.1.10","success":true,"detail":"Deployed successfully",` +
				`"responseTime":0},{"envName":"prod","podName":"prod-worker-1",` +
				`"podIp":"10.0.1.11","success":false,"detail":"Read timed out",` +
				`"responseTime":0}]}}`,
		},
		{
			name: "one failed pod fails its environment entry",
			cfg: Config{Environments: []string{"prod"},
				DeployFailures: []DeployFailure{{Environment: "prod", Pod: "prod-worker-1"}}},
			body: `{"status":"SUCCESS","resultMessage":"Credential saved successfully but ` +
				`deployment to environments failed","deploymentResult":{"success":false,` +
				`"message":"Deployment failed for one or more environments",` +
				`"environmentResults":[{"environmentName":"prod","success":false,` +
				`"message":"Connection refused"}]}}`,
		},
		{
			name: "a failure for another credential does not apply",
			cfg: Config{Environments: []string{"prod"},
				DeployFailures: []DeployFailure{{Username: "other", Environment: "prod"}}},
			deployed: true,
		},
		{
			name: "a failure for another project does not apply",
			cfg: Config{Environments: []string{"prod"},
				DeployFailures: []DeployFailure{{Project: "other", Environment: "prod"}}},
			deployed: true,
		},
		{
			name: "a failure for this credential applies",
			cfg: Config{Environments: []string{"prod"},
				DeployFailures: []DeployFailure{{Project: "app", Username: "svc",
					Environment: "prod"}}},
		},
		{
			name: "a failure with no environment fails every environment",
			cfg:  Config{DeployFailures: []DeployFailure{{Username: "svc"}}},
		},
		{
			name: "no environment at all is a failed deployment",
			cfg:  Config{Environments: []string{}},
			body: `{"status":"SUCCESS","resultMessage":"Credential saved successfully but ` +
				`deployment to environments failed","deploymentResult":{"success":false,` +
				`"message":"No environment to deploy to","environmentResults":[]}}`,
		},
		{
			name: "no environment at all in the pod shape",
			cfg:  Config{Shape: ShapePods, Environments: []string{}},
			body: `{"status":"SUCCESS","resultMessage":"Credential saved successfully but ` +
				`deployment to environments failed","deploymentResult":{"success":false,` +
				`"responseTime":0,"detailList":[]}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := start(t, tt.cfg)

			a := patch(t, run.URL, "app", "svc", "new")
			got := wantJSON(t, a, http.StatusOK)
			if tt.body != "" && a.body != tt.body {
				t.Errorf("body =\n%s\nwant\n%s", a.body, tt.body)
			}
			dpl, _ := got["deploymentResult"].(map[string]any)
			if dpl["success"] != tt.deployed {
				t.Errorf("deploymentResult.success = %v, want %v", dpl["success"], tt.deployed)
			}
			if _, hasMsg := got["resultMessage"]; hasMsg == tt.deployed &&
				tt.cfg.Envelope != EnvelopeSeed {
				t.Errorf("resultMessage present = %v, want %v", hasMsg, !tt.deployed)
			}
			if pw, _ := run.Password("app", "svc"); pw != "new" {
				t.Errorf("password = %q, want it saved despite the deploy", pw)
			}
		})
	}
}

func TestOmittedDeploymentResult(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		body string
	}{
		{"seed envelope", Config{Envelope: EnvelopeSeed, OmitDeploymentResult: true},
			`{"success":true}`},
		{"current envelope", Config{OmitDeploymentResult: true}, `{"status":"SUCCESS"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := start(t, tt.cfg)

			a := patch(t, run.URL, "app", "svc", "new")
			wantJSON(t, a, http.StatusOK)
			wantBody(t, a, http.StatusOK, tt.body)
			if pw, _ := run.Password("app", "svc"); pw != "new" {
				t.Errorf("password = %q, want new", pw)
			}
		})
	}
}
