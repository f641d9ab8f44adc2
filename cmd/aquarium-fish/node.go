package main

import (
	"context"
	"fmt"
	"strconv"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
)

func init() {
	var o clientOptions
	cmd := &cobra.Command{Use: "node", Short: "Inspect nodes and put a node in maintenance"}
	addClientFlags(cmd, &o)

	var on, off, shutdown bool
	var delay string
	maint := &cobra.Command{
		Use:   "maintenance --on|--off [--shutdown [--delay 10m]]",
		Short: "Stop (--on) or resume (--off) taking new applications on this node; optionally shut it down",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if on && off {
				return fmt.Errorf("--on and --off: choose one")
			}
			req := &pb.NodeServiceSetMaintenanceRequest{}
			if on || off {
				req.Maintenance = &on
			}
			if shutdown {
				req.Shutdown = &shutdown
				if delay != "" {
					req.ShutdownDelay = &delay
				}
			}
			if req.Maintenance == nil && req.Shutdown == nil {
				return fmt.Errorf("give --on, --off or --shutdown")
			}
			c, err := o.connect()
			if err != nil {
				return err
			}
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			resp, err := c.node.SetMaintenance(ctx, connect.NewRequest(req))
			if err != nil {
				return apiErr("set maintenance", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), resp.Msg.Message)
			return nil
		},
	}
	maint.Flags().BoolVar(&on, "on", false, "enter maintenance")
	maint.Flags().BoolVar(&off, "off", false, "leave maintenance")
	maint.Flags().BoolVar(&shutdown, "shutdown", false, "shut the node down")
	maint.Flags().StringVar(&delay, "delay", "", "shutdown delay, e.g. 10m")

	lst := &cobra.Command{
		Use: "list", Short: "List the nodes sharing the database", Args: cobra.NoArgs,
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, _ []string, c *clients) error {
			resp, err := c.node.List(ctx, connect.NewRequest(&pb.NodeServiceListRequest{}))
			if err != nil {
				return apiErr("list nodes", err)
			}
			return c.printNodes(cmd, list[*pb.Node](resp.Msg.Data), resp.Msg.Data)
		}),
	}
	this := &cobra.Command{
		Use: "this", Short: "Show the node you talk to", Args: cobra.NoArgs,
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, _ []string, c *clients) error {
			resp, err := c.node.GetThis(ctx, connect.NewRequest(&pb.NodeServiceGetThisRequest{}))
			if err != nil {
				return apiErr("get node", err)
			}
			return c.printNodes(cmd, resp.Msg.Data, []*pb.Node{resp.Msg.Data})
		}),
	}
	cmd.AddCommand(maint, lst, this)
	rootCmd.AddCommand(cmd)
}

func (c *clients) printNodes(cmd *cobra.Command, data any, nodes []*pb.Node) error {
	rows := make([]row, 0, len(nodes))
	for _, n := range nodes {
		rows = append(rows, row{n.Name, orDash(n.Address), orDash(n.Location), strconv.FormatBool(n.Maintenance), fmtTime(n.UpdatedAt, n.UpdatedAt != nil)})
	}
	return c.print(cmd.OutOrStdout(), data, row{"NAME", "ADDRESS", "LOCATION", "MAINTENANCE", "HEARTBEAT"}, rows)
}
