// Package store persists the node's state. The Store interface has two
// implementations sharing one SQL schema and migrations: store/sqlite (the
// embedded default) and store/postgres (several nodes on one database).
// Both pass the same conformance suite (store/storetest).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

// Sentinel errors; implementations wrap them with context.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: a compare-and-set lost (the current state was not `from`).
	ErrConflict = errors.New("state conflict")
)

// User is an API user. PasswordHash is never logged or returned by the API.
type User struct {
	Name         string    `json:"name"`
	PasswordHash string    `json:"-"`
	Roles        []string  `json:"roles"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Node is a node of the cluster sharing the store.
type Node struct {
	Name        string    `json:"name"`
	Address     string    `json:"address"`
	Location    string    `json:"location"`
	Maintenance bool      `json:"maintenance"`
	UpdatedAt   time.Time `json:"updated_at"` // heartbeat
}

// LabelFilter selects labels; zero values mean "any".
type LabelFilter struct {
	Name    string
	Version int  // ignored when LatestOnly
	Latest  bool // only the highest version of each name
}

// Store is the node's persistence. Every state change is a compare-and-set
// inside a transaction, so no update is ever lost between nodes.
//
// Create methods fill an empty UID (a UUID) and zero CreatedAt/UpdatedAt
// from the store's clock (see WithClock) and write them back to the
// argument. Errors wrap ErrNotFound, ErrAlreadyExists or ErrConflict where
// those apply; invalid input (an empty key, invalid JSON in a JSON field) is
// a plain error naming the field.
type Store interface {
	Close() error

	// Labels. (name, version) is unique; version 0 is editable.
	CreateLabel(ctx context.Context, l *core.Label) error
	UpdateLabel(ctx context.Context, l *core.Label) error // version 0 only
	GetLabel(ctx context.Context, uid string) (*core.Label, error)
	ListLabels(ctx context.Context, f LabelFilter) ([]core.Label, error)
	DeleteLabel(ctx context.Context, uid string) error

	// Applications: CreateApplication also records the first state (NEW) in
	// the same transaction; the label must exist (ErrNotFound otherwise).
	CreateApplication(ctx context.Context, a *core.Application) error
	GetApplication(ctx context.Context, uid string) (*core.Application, error)
	ListApplications(ctx context.Context, owner string) ([]core.Application, error) // owner "" = all
	// CurrentState is the latest state of an application.
	CurrentState(ctx context.Context, appUID string) (*core.ApplicationState, error)
	ListStates(ctx context.Context, appUID string) ([]core.ApplicationState, error)
	// Transition appends state `to` only if the current state is `from`;
	// otherwise it returns ErrConflict (wrapped) and changes nothing.
	Transition(ctx context.Context, appUID string, from, to core.Status, description string) error
	// ListByStatus returns applications whose current state is one of statuses,
	// oldest first, at most limit (0 = no limit).
	ListByStatus(ctx context.Context, limit int, statuses ...core.Status) ([]core.Application, error)
	// ListCurrentStates returns the current state of every application whose
	// current state is one of statuses (none = any), oldest application
	// first, at most limit (0 = no limit): one query instead of
	// ListByStatus + CurrentState per application (e.g. to find dead
	// applications older than the cleanup interval).
	ListCurrentStates(ctx context.Context, limit int, statuses ...core.Status) ([]core.ApplicationState, error)
	// ClaimNew moves up to limit NEW applications to ELECTED for node, exactly
	// once across all nodes, and returns them.
	ClaimNew(ctx context.Context, node string, limit int) ([]core.Application, error)
	// DeleteApplication purges a (dead) application with its states,
	// resource and tasks.
	DeleteApplication(ctx context.Context, uid string) error

	// Resources: at most one per application, which must exist. GetResourceByIP
	// prefers the resource of an ALLOCATED application, then the newest.
	SaveResource(ctx context.Context, r *core.Resource) error // insert or update by application
	GetResource(ctx context.Context, appUID string) (*core.Resource, error)
	GetResourceByIP(ctx context.Context, ip string) (*core.Resource, error)
	ListResources(ctx context.Context, node string) ([]core.Resource, error) // node "" = all
	DeleteResource(ctx context.Context, appUID string) error

	// Tasks. CreateTask requires an existing application (ErrNotFound) and
	// When = ALLOCATED or DEALLOCATE. ListTasks("") lists all tasks.
	CreateTask(ctx context.Context, t *core.Task) error
	GetTask(ctx context.Context, uid string) (*core.Task, error)
	ListTasks(ctx context.Context, appUID string) ([]core.Task, error)
	// ListPendingTasks lists the tasks without a result yet, oldest first
	// (so a node finds tasks created through another node).
	ListPendingTasks(ctx context.Context) ([]core.Task, error)
	// SetTaskResult stores the result once; a second call returns ErrConflict.
	SetTaskResult(ctx context.Context, uid string, result []byte) error

	// Users.
	CreateUser(ctx context.Context, u *User) error
	UpdateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, name string) (*User, error)
	ListUsers(ctx context.Context) ([]User, error)
	DeleteUser(ctx context.Context, name string) error

	// Nodes.
	UpsertNode(ctx context.Context, n *Node) error
	GetNode(ctx context.Context, name string) (*Node, error)
	ListNodes(ctx context.Context) ([]Node, error)
}

// Options configure a Store implementation when it is opened.
type Options struct {
	// Clock stamps CreatedAt/UpdatedAt that the caller left zero and every
	// state written by Transition/ClaimNew. Default: clock.Real.
	Clock clock.Clock
}

// Option changes Options.
type Option func(*Options)

// WithClock makes the store read time from c (a *clock.Virtual in tests).
func WithClock(c clock.Clock) Option {
	return func(o *Options) { o.Clock = c }
}

// ApplyOptions returns the defaults overridden by opts.
func ApplyOptions(opts ...Option) Options {
	o := Options{Clock: clock.Real{}}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	return o
}
