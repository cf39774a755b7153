package simulator

// ClearFaults drops every pending fault; the configuration, credentials and
// request log stay (Reset forgets everything).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}
