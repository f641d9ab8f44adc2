package aws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/aquarium-fish/aquarium-fish/internal/driver"
)

// ErrorClass is how the driver treats a failed AWS call.
type ErrorClass int

// Error classes, from most to least hopeful.
const (
	// ClassNone is a nil error.
	ClassNone ErrorClass = iota
	// ClassRetryable errors (throttling, 5xx, network) may succeed on retry.
	ClassRetryable
	// ClassCapacity errors mean AWS has no capacity now; the engine may try
	// later or another definition. They wrap driver.ErrCapacity.
	ClassCapacity
	// ClassNotFound means the object does not exist (any *.NotFound code).
	ClassNotFound
	// ClassPermanent errors will not change on retry (bad parameters, auth).
	ClassPermanent
)

// String names the class.
func (c ErrorClass) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassRetryable:
		return "retryable"
	case ClassCapacity:
		return "capacity"
	case ClassNotFound:
		return "not-found"
	default:
		return "permanent"
	}
}

var capacityCodes = map[string]bool{
	"InsufficientHostCapacity":     true,
	"InsufficientInstanceCapacity": true,
	"InsufficientCapacityOnHost":   true,
	"HostLimitExceeded":            true,
	"InsufficientCapacity":         true,
	"InstanceLimitExceeded":        true,
	"VcpuLimitExceeded":            true,
}

var retryableCodes = map[string]bool{
	"RequestLimitExceeded":                   true,
	"Throttling":                             true,
	"ThrottlingException":                    true,
	"ThrottledException":                     true,
	"RequestThrottled":                       true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"EC2ThrottledException":                  true,
	"SlowDown":                               true,
	"PriorRequestNotComplete":                true,
	"TransactionInProgressException":         true,
	"RequestTimeout":                         true,
	"RequestTimeoutException":                true,
	"InternalError":                          true,
	"InternalFailure":                        true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	"ServiceUnavailableException":            true,
	"Unavailable":                            true,
	"ProvisionedThroughputExceededException": true,
}

// ErrorCode returns the AWS error code of err, or "".
func ErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// Classify is the one place AWS errors are interpreted.
func Classify(err error) ErrorClass {
	if err == nil {
		return ClassNone
	}
	if errors.Is(err, driver.ErrCapacity) {
		return ClassCapacity
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ClassPermanent
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		switch {
		case capacityCodes[code]:
			return ClassCapacity
		case retryableCodes[code]:
			return ClassRetryable
		case strings.HasSuffix(code, ".NotFound") || strings.HasSuffix(code, "NotFound") ||
			strings.HasSuffix(code, "NotFoundException"):
			return ClassNotFound
		case apiErr.ErrorFault() == smithy.FaultServer:
			return ClassRetryable
		}
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= 500 {
		return ClassRetryable
	}
	if apiErr != nil {
		return ClassPermanent
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return ClassRetryable
	}
	return ClassPermanent
}

// IsNotFound reports whether err says the AWS object does not exist.
func IsNotFound(err error) bool { return Classify(err) == ClassNotFound }

// awsErr wraps an AWS error with the operation; capacity errors also wrap
// driver.ErrCapacity so the engine can recognise them.
func awsErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if Classify(err) == ClassCapacity && !errors.Is(err, driver.ErrCapacity) {
		return fmt.Errorf("%s: %w: %w", op, driver.ErrCapacity, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Sleeper waits for d or until ctx is done. Production uses real timers;
// tests and the simulator pass one that advances a virtual clock.
type Sleeper func(ctx context.Context, d time.Duration) error

// RealSleep waits on a real timer.
func RealSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryPolicy bounds the driver-level retries of retryable AWS errors.
type retryPolicy struct {
	Attempts int           // total attempts, >= 1
	Base     time.Duration // first backoff, doubled each time
	Max      time.Duration
}

// isThrottle reports whether AWS rejected the request before doing anything
// (so even a non-idempotent call may be repeated).
func isThrottle(err error) bool {
	switch ErrorCode(err) {
	case "RequestLimitExceeded", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
		"RequestThrottledException", "TooManyRequestsException", "EC2ThrottledException", "SlowDown":
		return true
	}
	return false
}

// callOnce runs a non-idempotent call (no ClientToken): only throttling is
// retried, since after a 5xx or a network error the call may have succeeded.
func (d *Driver) callOnce(ctx context.Context, op string, fn func(context.Context) error) error {
	return d.callIf(ctx, op, fn, isThrottle)
}

// call runs fn, retrying retryable errors with exponential backoff via the
// driver's sleeper. Only idempotent calls (reads, or writes with a
// ClientToken / naturally idempotent deletes) may go through it.
func (d *Driver) call(ctx context.Context, op string, fn func(context.Context) error) error {
	return d.callIf(ctx, op, fn, func(err error) bool { return Classify(err) == ClassRetryable })
}

func (d *Driver) callIf(ctx context.Context, op string, fn func(context.Context) error, retryable func(error) bool) error {
	p := d.retry
	backoff := p.Base
	var err error
	for attempt := 1; ; attempt++ {
		err = fn(ctx)
		if err == nil {
			return nil
		}
		if !retryable(err) || attempt >= p.Attempts {
			break
		}
		d.log.Debug("aws call retry", "op", op, "attempt", attempt, "code", ErrorCode(err))
		if serr := d.sleep(ctx, backoff); serr != nil {
			return awsErr(op, err)
		}
		backoff *= 2
		if backoff > p.Max {
			backoff = p.Max
		}
	}
	return awsErr(op, err)
}
