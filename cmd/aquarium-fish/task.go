package main

import (
	"context"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
)

func init() {
	var o clientOptions
	cmd := &cobra.Command{Use: "task", Short: "Run driver tasks (snapshot, image) on an application's resource"}
	addClientFlags(cmd, &o)

	var name, when string
	var optKV []string
	create := &cobra.Command{
		Use:   "create APP_UID --task snapshot [--when ALLOCATED|DEALLOCATE] [--opt full=true]",
		Short: "Create a task for an application",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return fmt.Errorf("--task: required (e.g. snapshot, image)")
			}
			w, ok := pb.ApplicationState_Status_value[strings.ToUpper(when)]
			if !ok || (strings.ToUpper(when) != "ALLOCATED" && strings.ToUpper(when) != "DEALLOCATE") {
				return fmt.Errorf("--when: must be ALLOCATED or DEALLOCATE, got %q", when)
			}
			opts, err := parseMeta(optKV)
			if err != nil {
				return fmt.Errorf("--opt: %w", err)
			}
			c, err := o.connect()
			if err != nil {
				return err
			}
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			resp, err := c.app.CreateTask(ctx, connect.NewRequest(&pb.ApplicationServiceCreateTaskRequest{Task: &pb.ApplicationTask{
				ApplicationUid: args[0], Task: name, When: pb.ApplicationState_Status(w), Options: opts,
			}}))
			if err != nil {
				return apiErr("create task", err)
			}
			return c.printTasks(cmd, resp.Msg.Data, []*pb.ApplicationTask{resp.Msg.Data})
		},
	}
	create.Flags().StringVar(&name, "task", "", "task name (snapshot, image, ...)")
	create.Flags().StringVar(&when, "when", "ALLOCATED", "ALLOCATED (now) or DEALLOCATE (before the machine goes away)")
	create.Flags().StringArrayVar(&optKV, "opt", nil, "task option key=value (repeatable), e.g. full=true")

	lst := &cobra.Command{
		Use: "list APP_UID", Short: "List the tasks of an application with their results", Args: cobra.ExactArgs(1),
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, args []string, c *clients) error {
			resp, err := c.app.ListTask(ctx, connect.NewRequest(&pb.ApplicationServiceListTaskRequest{ApplicationUid: args[0]}))
			if err != nil {
				return apiErr("list tasks", err)
			}
			return c.printTasks(cmd, list[*pb.ApplicationTask](resp.Msg.Data), resp.Msg.Data)
		}),
	}
	get := &cobra.Command{
		Use: "get TASK_UID", Short: "Show a task and its result", Args: cobra.ExactArgs(1),
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, args []string, c *clients) error {
			resp, err := c.app.GetTask(ctx, connect.NewRequest(&pb.ApplicationServiceGetTaskRequest{ApplicationTaskUid: args[0]}))
			if err != nil {
				return apiErr("get task", err)
			}
			return c.printTasks(cmd, resp.Msg.Data, []*pb.ApplicationTask{resp.Msg.Data})
		}),
	}
	cmd.AddCommand(create, lst, get)
	rootCmd.AddCommand(cmd)
}

func (c *clients) printTasks(cmd *cobra.Command, data any, tasks []*pb.ApplicationTask) error {
	rows := make([]row, 0, len(tasks))
	for _, t := range tasks {
		result := "(pending)"
		if t.Result != nil {
			b, _ := protojson.Marshal(t.Result)
			result = string(b)
		}
		rows = append(rows, row{t.Uid, t.ApplicationUid, t.Task, t.When.String(), result})
	}
	return c.print(cmd.OutOrStdout(), data, row{"UID", "APPLICATION", "TASK", "WHEN", "RESULT"}, rows)
}
