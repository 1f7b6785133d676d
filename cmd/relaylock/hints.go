package main

// hintFor returns advice for errors whose fix is known. Packages return
// typed errors; only cmd/ turns them into advice.
func hintFor(err error) string {
	if h := winrmHint(err); h != "" {
		return h
	}
	return ""
}
