package dualwritetest

// Held reports whether calls that start now would block on a hold.
func (s *Store[V]) Held() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gate != nil
}
