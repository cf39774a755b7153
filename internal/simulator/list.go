package simulator

import (
	"net/http"
	"slices"
)

// credentialDTO is one entry of the credential list; Password is always
// null, as on Apinizer.
type credentialDTO struct {
	Username     string   `json:"username"`
	Password     *string  `json:"password"`
	Enabled      bool     `json:"enabled"`
	RoleNameList []string `json:"roleNameList"`
	IPList       []string `json:"ipList"`
}

// credentialList is the answer to the credential list.
type credentialList struct {
	Status      string          `json:"status"`
	ResultList  []credentialDTO `json:"resultList"`
	ResultCount int             `json:"resultCount"`
}

// listCredentials answers GET /apiops/projects/{project}/credentials/; the
// project "admin" lists the credentials of every project. Both envelopes
// answer success in the current list shape (the seed documentation has no
// list); failures follow the configured envelope.
func (s *Server) listCredentials(w http.ResponseWriter, r *http.Request,
	project string, entry *Request) {
	cfg := s.Config()
	if apiErr := s.authorize(r, cfg.Envelope, entry); apiErr != nil {
		writeError(w, cfg.Envelope, apiErr)
		return
	}
	names, ok := s.usernames(project)
	if !ok {
		writeError(w, cfg.Envelope, errProjectNotFound(cfg.Envelope, project))
		return
	}
	out := credentialList{Status: statusSuccess, ResultList: []credentialDTO{},
		ResultCount: len(names)}
	for _, name := range names {
		out.ResultList = append(out.ResultList, credentialDTO{Username: name,
			Enabled: true, RoleNameList: []string{}, IPList: []string{}})
	}
	writeJSON(w, http.StatusOK, out)
}

// usernames lists a project's usernames, sorted, or every project's for
// "admin"; it reports false for an unknown project.
func (s *Server) usernames(project string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for p, creds := range s.projects {
		if p != project && project != "admin" {
			continue
		}
		for name := range creds {
			names = append(names, name)
		}
	}
	if _, ok := s.projects[project]; !ok && project != "admin" {
		return nil, false
	}
	slices.Sort(names)
	return names, true
}
