package api

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
)

type applicationService struct{ s *Server }

// app loads an application the caller may see and touch (its owner or an admin).
func (h *applicationService) app(ctx context.Context, uid string) (*core.Application, error) {
	if uid == "" {
		return nil, invalid("application_uid: required")
	}
	a, err := h.s.opts.Store.GetApplication(ctx, uid)
	if err != nil {
		return nil, h.s.storeError(err, "application "+uid)
	}
	c := callerFrom(ctx)
	if !c.admin && a.OwnerName != c.name {
		return nil, denied("application %s belongs to another user", uid)
	}
	return a, nil
}

// visible lists the applications of the caller (all for admins).
func (h *applicationService) visible(ctx context.Context) ([]core.Application, error) {
	c := callerFrom(ctx)
	owner := c.name
	if c.admin {
		owner = ""
	}
	apps, err := h.s.opts.Store.ListApplications(ctx, owner)
	if err != nil {
		return nil, h.s.storeError(err, "applications")
	}
	return apps, nil
}

func (h *applicationService) List(ctx context.Context, _ *connect.Request[pb.ApplicationServiceListRequest]) (*connect.Response[pb.ApplicationServiceListResponse], error) {
	apps, err := h.visible(ctx)
	if err != nil {
		return nil, err
	}
	out := &pb.ApplicationServiceListResponse{Status: true, Message: fmt.Sprintf("%d application(s)", len(apps)), Data: make([]*pb.Application, 0, len(apps))}
	for i := range apps {
		out.Data = append(out.Data, applicationToPB(&apps[i]))
	}
	return connect.NewResponse(out), nil
}

func (h *applicationService) Get(ctx context.Context, req *connect.Request[pb.ApplicationServiceGetRequest]) (*connect.Response[pb.ApplicationServiceGetResponse], error) {
	a, err := h.app(ctx, req.Msg.GetApplicationUid())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&pb.ApplicationServiceGetResponse{Status: true, Message: "application found", Data: applicationToPB(a)}), nil
}

func (h *applicationService) Create(ctx context.Context, req *connect.Request[pb.ApplicationServiceCreateRequest]) (*connect.Response[pb.ApplicationServiceCreateResponse], error) {
	in := req.Msg.GetApplication()
	if in == nil {
		return nil, invalid("application: required")
	}
	if in.LabelUid == "" {
		return nil, invalid("application.label_uid: required")
	}
	md, err := fromStruct(in.Metadata)
	if err != nil {
		return nil, invalid("application.metadata: %w", err)
	}
	c := callerFrom(ctx)
	l, err := h.s.opts.Store.GetLabel(ctx, in.LabelUid)
	if err != nil {
		return nil, h.s.storeError(err, "application.label_uid: label "+in.LabelUid)
	}
	if !c.canSeeLabel(l) {
		return nil, notFound("application.label_uid: label %s not found", in.LabelUid)
	}
	a := &core.Application{UID: uuid.NewString(), OwnerName: c.name, LabelUID: in.LabelUid, Metadata: md, CreatedAt: h.s.opts.Clock.Now().UTC()}
	if err := h.s.opts.Engine.CreateApplication(ctx, a); err != nil {
		return nil, h.s.engineError(err, "application")
	}
	h.s.log.Info("application created", "uid", a.UID, "label", l.Name, "owner", a.OwnerName)
	return connect.NewResponse(&pb.ApplicationServiceCreateResponse{Status: true, Message: "application created", Data: applicationToPB(a)}), nil
}

func (h *applicationService) ListState(ctx context.Context, _ *connect.Request[pb.ApplicationServiceListStateRequest]) (*connect.Response[pb.ApplicationServiceListStateResponse], error) {
	apps, err := h.visible(ctx)
	if err != nil {
		return nil, err
	}
	out := &pb.ApplicationServiceListStateResponse{Status: true, Data: make([]*pb.ApplicationState, 0, len(apps))}
	for _, a := range apps {
		st, err := h.s.opts.Store.CurrentState(ctx, a.UID)
		if err != nil {
			continue // purged meanwhile
		}
		out.Data = append(out.Data, stateToPB(st))
	}
	out.Message = fmt.Sprintf("%d state(s)", len(out.Data))
	return connect.NewResponse(out), nil
}

func (h *applicationService) GetState(ctx context.Context, req *connect.Request[pb.ApplicationServiceGetStateRequest]) (*connect.Response[pb.ApplicationServiceGetStateResponse], error) {
	a, err := h.app(ctx, req.Msg.GetApplicationUid())
	if err != nil {
		return nil, err
	}
	st, err := h.s.opts.Store.CurrentState(ctx, a.UID)
	if err != nil {
		return nil, h.s.storeError(err, "state of application "+a.UID)
	}
	return connect.NewResponse(&pb.ApplicationServiceGetStateResponse{Status: true, Message: string(st.Status), Data: stateToPB(st)}), nil
}

func (h *applicationService) ListResource(ctx context.Context, _ *connect.Request[pb.ApplicationServiceListResourceRequest]) (*connect.Response[pb.ApplicationServiceListResourceResponse], error) {
	c := callerFrom(ctx)
	res, err := h.s.opts.Store.ListResources(ctx, "")
	if err != nil {
		return nil, h.s.storeError(err, "resources")
	}
	var mine map[string]bool
	if !c.admin {
		apps, err := h.visible(ctx)
		if err != nil {
			return nil, err
		}
		mine = make(map[string]bool, len(apps))
		for _, a := range apps {
			mine[a.UID] = true
		}
	}
	out := &pb.ApplicationServiceListResourceResponse{Status: true, Data: []*pb.ApplicationResource{}}
	for i := range res {
		if c.admin || mine[res[i].ApplicationUID] {
			out.Data = append(out.Data, resourceToPB(&res[i]))
		}
	}
	out.Message = fmt.Sprintf("%d resource(s)", len(out.Data))
	return connect.NewResponse(out), nil
}

func (h *applicationService) GetResource(ctx context.Context, req *connect.Request[pb.ApplicationServiceGetResourceRequest]) (*connect.Response[pb.ApplicationServiceGetResourceResponse], error) {
	a, err := h.app(ctx, req.Msg.GetApplicationUid())
	if err != nil {
		return nil, err
	}
	r, err := h.s.opts.Store.GetResource(ctx, a.UID)
	if err != nil {
		return nil, h.s.storeError(err, "resource of application "+a.UID)
	}
	return connect.NewResponse(&pb.ApplicationServiceGetResourceResponse{Status: true, Message: "resource found", Data: resourceToPB(r)}), nil
}

func (h *applicationService) ListTask(ctx context.Context, req *connect.Request[pb.ApplicationServiceListTaskRequest]) (*connect.Response[pb.ApplicationServiceListTaskResponse], error) {
	a, err := h.app(ctx, req.Msg.GetApplicationUid())
	if err != nil {
		return nil, err
	}
	tasks, err := h.s.opts.Store.ListTasks(ctx, a.UID)
	if err != nil {
		return nil, h.s.storeError(err, "tasks of application "+a.UID)
	}
	out := &pb.ApplicationServiceListTaskResponse{Status: true, Message: fmt.Sprintf("%d task(s)", len(tasks)), Data: make([]*pb.ApplicationTask, 0, len(tasks))}
	for i := range tasks {
		out.Data = append(out.Data, taskToPB(&tasks[i]))
	}
	return connect.NewResponse(out), nil
}

func (h *applicationService) CreateTask(ctx context.Context, req *connect.Request[pb.ApplicationServiceCreateTaskRequest]) (*connect.Response[pb.ApplicationServiceCreateTaskResponse], error) {
	in := req.Msg.GetTask()
	if in == nil {
		return nil, invalid("task: required")
	}
	if in.Task == "" {
		return nil, invalid("task.task: required (e.g. \"snapshot\")")
	}
	var when core.Status
	switch in.When {
	case pb.ApplicationState_ALLOCATED:
		when = core.TaskWhenAllocated
	case pb.ApplicationState_DEALLOCATE:
		when = core.TaskWhenDeallocate
	default:
		return nil, invalid("task.when: must be ALLOCATED or DEALLOCATE, got %s", in.When)
	}
	a, err := h.app(ctx, in.ApplicationUid)
	if err != nil {
		return nil, err
	}
	opts, err := fromStruct(in.Options)
	if err != nil {
		return nil, invalid("task.options: %w", err)
	}
	now := h.s.opts.Clock.Now().UTC()
	t := &core.Task{UID: uuid.NewString(), ApplicationUID: a.UID, Task: in.Task, When: when, Options: opts, CreatedAt: now, UpdatedAt: now}
	if err := h.s.opts.Engine.CreateTask(ctx, t); err != nil {
		return nil, h.s.engineError(err, "task")
	}
	return connect.NewResponse(&pb.ApplicationServiceCreateTaskResponse{Status: true, Message: "task created", Data: taskToPB(t)}), nil
}

func (h *applicationService) GetTask(ctx context.Context, req *connect.Request[pb.ApplicationServiceGetTaskRequest]) (*connect.Response[pb.ApplicationServiceGetTaskResponse], error) {
	uid := req.Msg.GetApplicationTaskUid()
	if uid == "" {
		return nil, invalid("application_task_uid: required")
	}
	t, err := h.s.opts.Store.GetTask(ctx, uid)
	if err != nil {
		return nil, h.s.storeError(err, "task "+uid)
	}
	if _, err := h.app(ctx, t.ApplicationUID); err != nil {
		return nil, err
	}
	return connect.NewResponse(&pb.ApplicationServiceGetTaskResponse{Status: true, Message: "task found", Data: taskToPB(t)}), nil
}

func (h *applicationService) Deallocate(ctx context.Context, req *connect.Request[pb.ApplicationServiceDeallocateRequest]) (*connect.Response[pb.ApplicationServiceDeallocateResponse], error) {
	a, err := h.app(ctx, req.Msg.GetApplicationUid())
	if err != nil {
		return nil, err
	}
	if err := h.s.opts.Engine.Deallocate(ctx, a.UID); err != nil {
		return nil, h.s.engineError(err, "deallocate application "+a.UID)
	}
	h.s.log.Info("application deallocation requested", "uid", a.UID, "by", callerFrom(ctx).name)
	return connect.NewResponse(&pb.ApplicationServiceDeallocateResponse{Status: true, Message: "deallocation requested"}), nil
}
