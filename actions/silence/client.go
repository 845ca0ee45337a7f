package silence

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"
	amsilence "github.com/prometheus/alertmanager/api/v2/client/silence"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/amapi"
	"github.com/selfheal/selfheal/redact"
)

const (
	// requestTimeout bounds each API request; a step's context may end it
	// sooner.
	requestTimeout = 30 * time.Second
)

// ErrNotFound is returned (wrapped) by Expire when Alertmanager does not
// know the silence: it was never created there, or its state was lost.
var ErrNotFound = errors.New("silence not found")

// client talks to one Alertmanager through the generated API v2 client.
// It is safe for concurrent use.
type client struct {
	api amsilence.ClientService
	// url is the base URL for messages, a password hidden.
	url string
	// redactor knows the URL's password and the basic auth built from
	// it: what an error body may echo.
	redactor *redact.Redactor
}

// newClient builds the go-openapi transport as amtool does
// (runtime/client.NewWithClient) on u with hc (nil: &http.Client{}).
func newClient(u *url.URL, hc *http.Client) *client {
	rt, redactor := amapi.Transport(u, hc)
	shown := *u
	shown.Path = strings.TrimSuffix(shown.Path, "/")
	return &client{api: amsilence.New(rt, strfmt.Default), url: shown.Redacted(), redactor: redactor}
}

// post creates s and returns its id. Errors are classified by classify.
func (c *client) post(ctx context.Context, s *models.PostableSilence) (string, error) {
	params := amsilence.NewPostSilencesParamsWithContext(ctx).WithTimeout(requestTimeout).WithSilence(s)
	ok, err := c.api.PostSilences(params, amapi.ReadStatus)
	if err != nil {
		return "", classify(ctx, err)
	}
	if ok.Payload == nil || ok.Payload.SilenceID == "" {
		return "", errors.New("the response has no silence id")
	}
	return ok.Payload.SilenceID, nil
}

// expire expires silence id. Expiring an expired silence succeeds; an
// unknown id is ErrNotFound.
func (c *client) expire(ctx context.Context, id string) error {
	params := amsilence.NewDeleteSilenceParamsWithContext(ctx).WithTimeout(requestTimeout).WithSilenceID(strfmt.UUID(id))
	_, err := c.api.DeleteSilence(params, amapi.ReadStatus)
	if err == nil {
		return nil
	}
	var se *amapi.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Code == http.StatusNotFound,
			// Alertmanager 0.25 answers 500 with silence.ErrNotFound's text.
			se.Code == http.StatusInternalServerError && se.Msg == "silence not found":
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case se.Code == http.StatusInternalServerError && strings.Contains(se.Msg, "already expired"):
			// Older Alertmanagers answer 500 "silence <id> already
			// expired"; the silence is where expiring it again would
			// put it.
			return nil
		}
	}
	return classify(ctx, err)
}

// classify marks an API error retryable when trying again can succeed: a
// transport error, a request timeout, 408, 429 or 5xx. A done ctx is
// permanent: the run is over.
func classify(ctx context.Context, err error) error {
	var (
		se *amapi.StatusError
		ue *url.Error
		ne net.Error
	)
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.As(err, &se):
		if se.Code >= 500 || se.Code == http.StatusRequestTimeout || se.Code == http.StatusTooManyRequests {
			return actions.Retryable(err)
		}
		return err
	case errors.As(err, &ue), errors.As(err, &ne):
		return actions.Retryable(err)
	}
	return err
}
