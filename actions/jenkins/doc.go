// Package jenkins owns the "jenkins.build" action: it triggers a Jenkins job
// (folders written "a/b") with parameters through gojenkins v1.1.0,
// authenticating with a user and an API token, and by default waits for the
// build's result.
//
// gojenkins v1.1.0 has known defects, worked around here: it never attaches
// a context to its requests (each call runs on its own goroutine and is
// abandoned when the context ends; our own *http.Client bounds it), its
// Init races on package-level loggers (one Init at a time, once per
// server), it panics when the crumb request fails (every call is
// recovered), it cannot see a cancelled queue item and polls forever
// (queue items and builds are polled here, with the context honoured), and
// it builds URLs from what Jenkins returns (URLs are built here from the
// configured server URL and the escaped job path).
package jenkins
