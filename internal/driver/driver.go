// Package driver defines the only thing the engine knows about clouds and
// machines: the Driver interface, its tasks, and a registry of driver kinds.
package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// ResourceStatus is what a driver reports about a previously allocated resource.
type ResourceStatus string

// Resource statuses.
const (
	StatusAllocated ResourceStatus = "allocated" // exists and usable
	StatusNone      ResourceStatus = "none"      // gone (terminated, never created)
)

// ErrTaskNotAvailable is returned by Driver.Task for an unknown task name.
var ErrTaskNotAvailable = errors.New("task not available in driver")

// ErrCapacity marks an allocation that failed for lack of capacity; the
// engine may retry later (possibly with another definition).
var ErrCapacity = errors.New("not enough capacity")

// AllocateRequest is what the engine asks a driver to allocate.
type AllocateRequest struct {
	ApplicationUID string // idempotency key (ClientToken) and tag
	LabelUID       string
	LabelName      string
	Definition     core.Definition
	Metadata       map[string]any // merged app+label metadata
}

// TaskTarget is what a task runs against.
type TaskTarget struct {
	Resource   core.Resource
	Definition core.Definition
	When       core.Status // ALLOCATED or DEALLOCATE
}

// Task is one runnable instance of a driver task.
type Task interface {
	Name() string
	// Execute runs the task and returns its JSON result.
	Execute(ctx context.Context, target TaskTarget) (json.RawMessage, error)
}

// Driver provides resources for definitions.
type Driver interface {
	// Name is the instance name, e.g. "aws" or "aws/prod".
	Name() string
	// Prepare validates the driver config (a JSON object) and connects.
	Prepare(ctx context.Context, cfg []byte) error
	// ValidateDefinition checks a definition at label creation; errors name the field.
	ValidateDefinition(def core.Definition) error
	// AvailableCapacity says how many more resources of def can be allocated now.
	AvailableCapacity(ctx context.Context, def core.Definition) (int64, error)
	// Allocate creates the resource. It must be idempotent per ApplicationUID and
	// must leave nothing behind when it fails.
	Allocate(ctx context.Context, req AllocateRequest) (*core.Resource, error)
	// Status reports whether a previously allocated resource still exists.
	Status(ctx context.Context, res core.Resource) (ResourceStatus, error)
	// Deallocate destroys the resource and everything created with it.
	Deallocate(ctx context.Context, res core.Resource) error
	// Task returns a runnable task, or ErrTaskNotAvailable.
	Task(name string, options []byte) (Task, error)
}

// Factory creates a driver instance with the given instance name.
type Factory func(instanceName string) Driver

var (
	regMu     sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a driver kind available by name ("aws", "test").
func Register(kind string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	factories[kind] = f
}

// Kind returns the driver kind of an instance name: "aws/prod" -> "aws".
func Kind(instanceName string) string {
	kind, _, _ := strings.Cut(instanceName, "/")
	return kind
}

// New creates a driver instance for an instance name such as "aws/prod".
func New(instanceName string) (Driver, error) {
	regMu.RLock()
	f, ok := factories[Kind(instanceName)]
	regMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown driver %q (known: %s)", instanceName, strings.Join(Kinds(), ", "))
	}
	return f(instanceName), nil
}

// Kinds lists the registered driver kinds.
func Kinds() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(factories))
	for k := range factories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
