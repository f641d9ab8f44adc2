package auth

import "sort"

// Role names.
const (
	RoleAdministrator = "Administrator"
	RolePower         = "Power"
	RoleUser          = "User"
)

// Permission allows one API method of one service; "*" matches any.
type Permission struct {
	Resource string `json:"resource"` // service short name, e.g. "ApplicationService"
	Action   string `json:"action"`   // method name, e.g. "Create"
}

// userPermissions is what every authenticated user may call (ownership is
// checked by the handlers).
var userPermissions = []Permission{
	{"LabelService", "List"}, {"LabelService", "Get"}, {"LabelService", "Create"},
	{"LabelService", "Update"}, {"LabelService", "Remove"},
	{"ApplicationService", "List"}, {"ApplicationService", "Get"}, {"ApplicationService", "Create"},
	{"ApplicationService", "ListState"}, {"ApplicationService", "GetState"},
	{"ApplicationService", "ListResource"}, {"ApplicationService", "GetResource"},
	{"ApplicationService", "Deallocate"},
	{"UserService", "GetMe"},
	{"RoleService", "List"}, {"RoleService", "Get"},
	{"NodeService", "List"}, {"NodeService", "Get"}, {"NodeService", "GetThis"},
}

// powerExtra is what Power adds to User: application tasks.
var powerExtra = []Permission{
	{"ApplicationService", "ListTask"}, {"ApplicationService", "CreateTask"},
	{"ApplicationService", "GetTask"},
}

var roles = map[string][]Permission{
	RoleAdministrator: {{"*", "*"}},
	RolePower:         append(append([]Permission{}, userPermissions...), powerExtra...),
	RoleUser:          userPermissions,
}

// RoleNames lists the known roles, sorted.
func RoleNames() []string {
	out := make([]string, 0, len(roles))
	for r := range roles {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// RolePermissions returns the permissions of a role and whether it exists.
func RolePermissions(role string) ([]Permission, bool) {
	p, ok := roles[role]
	if !ok {
		return nil, false
	}
	return append([]Permission(nil), p...), true
}

// KnownRole reports whether role exists.
func KnownRole(role string) bool {
	_, ok := roles[role]
	return ok
}

// IsAdmin reports whether the roles include Administrator.
func IsAdmin(userRoles []string) bool {
	for _, r := range userRoles {
		if r == RoleAdministrator {
			return true
		}
	}
	return false
}

// Allowed reports whether any of the roles permits service/method.
func Allowed(userRoles []string, service, method string) bool {
	for _, r := range userRoles {
		for _, p := range roles[r] {
			if (p.Resource == "*" || p.Resource == service) && (p.Action == "*" || p.Action == method) {
				return true
			}
		}
	}
	return false
}
