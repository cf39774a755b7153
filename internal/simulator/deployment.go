package simulator

import (
	"fmt"
	"slices"
	"time"
)

// seedChanged is the seed envelope's answer to a password change.
type seedChanged struct {
	Success          bool `json:"success"`
	DeploymentResult any  `json:"deploymentResult,omitempty"`
}

// currentChanged is the current envelope's answer to a password change.
type currentChanged struct {
	Status           string `json:"status"`
	ResultMessage    string `json:"resultMessage,omitempty"`
	DeploymentResult any    `json:"deploymentResult,omitempty"`
}

// changed is the 200 answer to a stored password, reporting the deploy.
func changed(cfg Config, project, username string, took time.Duration) any {
	if cfg.OmitDeploymentResult {
		if cfg.Envelope == EnvelopeSeed {
			return seedChanged{Success: true}
		}
		return currentChanged{Status: statusSuccess}
	}
	result, deployed := deployment(cfg, project, username, took)
	if cfg.Envelope == EnvelopeSeed {
		return seedChanged{Success: true, DeploymentResult: result}
	}
	out := currentChanged{Status: statusSuccess, DeploymentResult: result}
	if !deployed {
		out.ResultMessage = msgDeployFailed
	}
	return out
}

// envDeployment is deploymentResult in the ShapeEnvironments shape.
type envDeployment struct {
	Success            bool        `json:"success"`
	Message            string      `json:"message"`
	EnvironmentResults []envResult `json:"environmentResults"`
}

// envResult is one environment's entry.
type envResult struct {
	EnvironmentName string `json:"environmentName"`
	Success         bool   `json:"success"`
	Message         string `json:"message"`
}

// podDeployment is deploymentResult in the ShapePods shape.
type podDeployment struct {
	Success      bool        `json:"success"`
	ResponseTime int64       `json:"responseTime"`
	DetailList   []podResult `json:"detailList"`
}

// podResult is one pod's entry.
type podResult struct {
	EnvName      string `json:"envName"`
	PodName      string `json:"podName"`
	PodIP        string `json:"podIp"`
	Success      bool   `json:"success"`
	Detail       string `json:"detail"`
	ResponseTime int64  `json:"responseTime"`
}

// deployment builds deploymentResult for one credential and reports whether
// every entry succeeded (false when there is no environment at all).
func deployment(cfg Config, project, username string, took time.Duration) (any, bool) {
	ms := took.Milliseconds()
	deployed := len(cfg.Environments) > 0

	if cfg.Shape == ShapePods {
		out := podDeployment{ResponseTime: ms, DetailList: []podResult{}}
		for i, env := range cfg.Environments {
			for n := range cfg.PodsPerEnv {
				pod := PodName(env, n)
				msg, ok := deployTo(cfg, project, username, env, pod)
				deployed = deployed && ok
				out.DetailList = append(out.DetailList, podResult{
					EnvName: env, PodName: pod, PodIP: podIP(i, n),
					Success: ok, Detail: msg, ResponseTime: ms,
				})
			}
		}
		out.Success = deployed
		return out, deployed
	}

	out := envDeployment{EnvironmentResults: []envResult{}}
	for _, env := range cfg.Environments {
		msg, ok := deployTo(cfg, project, username, env, "")
		deployed = deployed && ok
		out.EnvironmentResults = append(out.EnvironmentResults,
			envResult{EnvironmentName: env, Success: ok, Message: msg})
	}
	out.Success = deployed
	switch {
	case len(cfg.Environments) == 0:
		out.Message = msgNoEnvironment
	case deployed:
		out.Message = msgDeployed
	default:
		out.Message = msgSomeFailed
	}
	return out, deployed
}

// deployTo reports the outcome of deploying to env (or to one pod of it):
// the first matching DeployFailure fails it.
func deployTo(cfg Config, project, username, env, pod string) (string, bool) {
	i := slices.IndexFunc(cfg.DeployFailures, func(f DeployFailure) bool {
		return f.matches(project, username, env, pod)
	})
	if i < 0 {
		return msgEnvDeployed, true
	}
	if msg := cfg.DeployFailures[i].Message; msg != "" {
		return msg, false
	}
	return DefaultDeployFailureMessage, false
}

// podIP is a made-up, stable address for pod n of the i-th environment.
func podIP(i, n int) string {
	return fmt.Sprintf("10.0.%d.%d", i+1, n+10)
}
