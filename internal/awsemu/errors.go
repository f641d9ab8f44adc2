package awsemu

import (
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
)

var _ smithy.APIError = (*APIError)(nil)

// APIError is an AWS error as the emulated service answers it. The in-memory
// world returns it directly (it satisfies smithy.APIError, so driver code
// classifies it exactly like an SDK error); the HTTP server writes it in the
// protocol's error shape with HTTPStatus.
type APIError struct {
	Code       string // e.g. "InvalidParameterValue", "InsufficientHostCapacity"
	Message    string
	HTTPStatus int // 400 by default
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("api error %s: %s", e.Code, e.Message)
}

// ErrorCode implements smithy.APIError.
func (e *APIError) ErrorCode() string { return e.Code }

// ErrorMessage implements smithy.APIError.
func (e *APIError) ErrorMessage() string { return e.Message }

// ErrorFault implements smithy.APIError: 5xx are server faults.
func (e *APIError) ErrorFault() smithy.ErrorFault {
	if e.Status() >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// Status is the HTTP status to answer with (400 when unset).
func (e *APIError) Status() int {
	if e.HTTPStatus == 0 {
		return http.StatusBadRequest
	}
	return e.HTTPStatus
}

// Errorf builds a client (HTTP 400) error.
func Errorf(code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...), HTTPStatus: http.StatusBadRequest}
}

// ServerErrorf builds a server (HTTP 500) error such as InsufficientHostCapacity.
func ServerErrorf(code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...), HTTPStatus: http.StatusInternalServerError}
}
