package api

import (
	"context"
	"fmt"
	"regexp"

	"connectrpc.com/connect"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
	"github.com/aquarium-fish/aquarium-fish/internal/auth"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

type userService struct{ s *Server }

var userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func (h *userService) GetMe(ctx context.Context, _ *connect.Request[pb.UserServiceGetMeRequest]) (*connect.Response[pb.UserServiceGetMeResponse], error) {
	c := callerFrom(ctx)
	// The authenticator already loaded the user; answer from the caller
	// record so GetMe costs no extra store round trip.
	return connect.NewResponse(&pb.UserServiceGetMeResponse{Status: true, Message: "you", Data: &pb.User{Name: c.name, Roles: c.roles}}), nil
}

func (h *userService) List(ctx context.Context, _ *connect.Request[pb.UserServiceListRequest]) (*connect.Response[pb.UserServiceListResponse], error) {
	users, err := h.s.opts.Store.ListUsers(ctx)
	if err != nil {
		return nil, h.s.storeError(err, "users")
	}
	out := &pb.UserServiceListResponse{Status: true, Message: fmt.Sprintf("%d user(s)", len(users)), Data: make([]*pb.User, 0, len(users))}
	for i := range users {
		out.Data = append(out.Data, userToPB(&users[i]))
	}
	return connect.NewResponse(out), nil
}

func (h *userService) Get(ctx context.Context, req *connect.Request[pb.UserServiceGetRequest]) (*connect.Response[pb.UserServiceGetResponse], error) {
	name := req.Msg.GetUserName()
	if name == "" {
		return nil, invalid("user_name: required")
	}
	u, err := h.s.opts.Store.GetUser(ctx, name)
	if err != nil {
		return nil, h.s.storeError(err, "user "+name)
	}
	return connect.NewResponse(&pb.UserServiceGetResponse{Status: true, Message: "user found", Data: userToPB(u)}), nil
}

func checkRoles(roles []string) error {
	for i, r := range roles {
		if !auth.KnownRole(r) {
			return invalid("user.roles[%d]: unknown role %q (known: %v)", i, r, auth.RoleNames())
		}
	}
	return nil
}

func (h *userService) Create(ctx context.Context, req *connect.Request[pb.UserServiceCreateRequest]) (*connect.Response[pb.UserServiceCreateResponse], error) {
	in := req.Msg.GetUser()
	if in == nil {
		return nil, invalid("user: required")
	}
	if !userNameRE.MatchString(in.Name) {
		return nil, invalid("user.name: must match %s", userNameRE)
	}
	roles := in.Roles
	if len(roles) == 0 {
		roles = []string{auth.RoleUser}
	}
	if err := checkRoles(roles); err != nil {
		return nil, err
	}
	pw, generated := in.GetPassword(), false
	if pw == "" {
		var err error
		if pw, err = auth.RandomPassword(); err != nil {
			return nil, connect.NewError(connect.CodeInternal, err)
		}
		generated = true
	}
	hash, err := auth.HashPassword(pw, h.s.opts.PasswordCost)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	now := h.s.opts.Clock.Now().UTC()
	u := &store.User{Name: in.Name, PasswordHash: hash, Roles: roles, CreatedAt: now, UpdatedAt: now}
	if err := h.s.opts.Store.CreateUser(ctx, u); err != nil {
		return nil, h.s.storeError(err, "user "+in.Name)
	}
	h.s.log.Info("user created", "name", u.Name, "roles", u.Roles, "by", callerFrom(ctx).name)
	out := userToPB(u)
	msg := "user created"
	if generated {
		out.Password = &pw
		msg = "user created with a generated password (shown only now)"
	}
	return connect.NewResponse(&pb.UserServiceCreateResponse{Status: true, Message: msg, Data: out}), nil
}

func (h *userService) Update(ctx context.Context, req *connect.Request[pb.UserServiceUpdateRequest]) (*connect.Response[pb.UserServiceUpdateResponse], error) {
	in := req.Msg.GetUser()
	if in == nil || in.Name == "" {
		return nil, invalid("user.name: required")
	}
	u, err := h.s.opts.Store.GetUser(ctx, in.Name)
	if err != nil {
		return nil, h.s.storeError(err, "user "+in.Name)
	}
	if in.Password != nil {
		if in.GetPassword() == "" {
			return nil, invalid("user.password: must not be empty")
		}
		if u.PasswordHash, err = auth.HashPassword(in.GetPassword(), h.s.opts.PasswordCost); err != nil {
			return nil, connect.NewError(connect.CodeInternal, err)
		}
	}
	if len(in.Roles) > 0 {
		if err := checkRoles(in.Roles); err != nil {
			return nil, err
		}
		u.Roles = in.Roles
	}
	u.UpdatedAt = h.s.opts.Clock.Now().UTC()
	if err := h.s.opts.Store.UpdateUser(ctx, u); err != nil {
		return nil, h.s.storeError(err, "user "+in.Name)
	}
	h.s.opts.Auth.Forget(u.Name)
	h.s.log.Info("user updated", "name", u.Name, "roles", u.Roles, "password_changed", in.Password != nil, "by", callerFrom(ctx).name)
	return connect.NewResponse(&pb.UserServiceUpdateResponse{Status: true, Message: "user updated", Data: userToPB(u)}), nil
}

func (h *userService) Remove(ctx context.Context, req *connect.Request[pb.UserServiceRemoveRequest]) (*connect.Response[pb.UserServiceRemoveResponse], error) {
	name := req.Msg.GetUserName()
	if name == "" {
		return nil, invalid("user_name: required")
	}
	if name == callerFrom(ctx).name {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("user_name: you cannot remove yourself"))
	}
	if err := h.s.opts.Store.DeleteUser(ctx, name); err != nil {
		return nil, h.s.storeError(err, "user "+name)
	}
	h.s.opts.Auth.Forget(name)
	return connect.NewResponse(&pb.UserServiceRemoveResponse{Status: true, Message: "user removed"}), nil
}

type roleService struct{ s *Server }

func roleToPB(name string, perms []auth.Permission) *pb.Role {
	r := &pb.Role{Name: name}
	for _, p := range perms {
		r.Permissions = append(r.Permissions, &pb.Permission{Resource: p.Resource, Action: p.Action})
	}
	return r
}

func (h *roleService) List(context.Context, *connect.Request[pb.RoleServiceListRequest]) (*connect.Response[pb.RoleServiceListResponse], error) {
	out := &pb.RoleServiceListResponse{Status: true}
	for _, n := range auth.RoleNames() {
		p, _ := auth.RolePermissions(n)
		out.Data = append(out.Data, roleToPB(n, p))
	}
	out.Message = fmt.Sprintf("%d role(s)", len(out.Data))
	return connect.NewResponse(out), nil
}

func (h *roleService) Get(_ context.Context, req *connect.Request[pb.RoleServiceGetRequest]) (*connect.Response[pb.RoleServiceGetResponse], error) {
	name := req.Msg.GetRoleName()
	p, ok := auth.RolePermissions(name)
	if !ok {
		return nil, notFound("role %q not found", name)
	}
	return connect.NewResponse(&pb.RoleServiceGetResponse{Status: true, Message: "role found", Data: roleToPB(name, p)}), nil
}

type authService struct{ s *Server }

func tokensToPB(t auth.Tokens) *pb.Tokens {
	return &pb.Tokens{Token: t.Token, ExpiresAt: ts(t.ExpiresAt), RefreshToken: t.RefreshToken, RefreshExpiresAt: ts(t.RefreshExpiresAt)}
}

func (h *authService) Login(ctx context.Context, req *connect.Request[pb.AuthServiceLoginRequest]) (*connect.Response[pb.AuthServiceLoginResponse], error) {
	if req.Msg.GetUsername() == "" {
		return nil, invalid("username: required")
	}
	t, u, err := h.s.opts.Auth.Login(ctx, peerIP(req.Peer().Addr), req.Msg.GetUsername(), req.Msg.GetPassword())
	if err != nil {
		h.s.log.Warn("login failed", "user", req.Msg.GetUsername(), "addr", peerIP(req.Peer().Addr), "err", err)
		return nil, authError(err)
	}
	return connect.NewResponse(&pb.AuthServiceLoginResponse{Status: true, Message: "logged in as " + u.Name, Data: tokensToPB(t)}), nil
}

func (h *authService) RefreshToken(ctx context.Context, req *connect.Request[pb.AuthServiceRefreshTokenRequest]) (*connect.Response[pb.AuthServiceRefreshTokenResponse], error) {
	t, u, err := h.s.opts.Auth.Refresh(ctx, req.Msg.GetRefreshToken())
	if err != nil {
		return nil, authError(err)
	}
	return connect.NewResponse(&pb.AuthServiceRefreshTokenResponse{Status: true, Message: "token refreshed for " + u.Name, Data: tokensToPB(t)}), nil
}
