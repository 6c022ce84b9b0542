package control

import "github.com/switchbackhq/switchback/internal/domain"

// OnNotice makes fn hear every notice this service emits (see
// domain.NoticeEvents), after the change it reports committed. fn runs on
// the changing call's goroutine: it must not block (package notify queues
// and returns). A later call replaces fn; a nil fn stops it.
func (s *Service) OnNotice(fn func(domain.Notice)) {
	if fn == nil {
		s.onNotice.Store(nil)
		return
	}
	s.onNotice.Store(&fn)
}

// notice stamps n with an id and the time, when it has none, and hands it
// to the OnNotice function, if any.
func (s *Service) notice(n domain.Notice) {
	fn := s.onNotice.Load()
	if fn == nil {
		return
	}
	if n.ID == "" {
		n.ID = domain.NewNoticeID()
	}
	if n.At.IsZero() {
		n.At = s.now().UTC()
	}
	(*fn)(n)
}
