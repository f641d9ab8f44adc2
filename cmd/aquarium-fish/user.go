package main

import (
	"context"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
)

func init() {
	var o clientOptions
	cmd := &cobra.Command{Use: "user", Short: "Manage API users (Administrator only, except `user me`)"}
	addClientFlags(cmd, &o)

	var roles []string
	var password string
	create := &cobra.Command{
		Use:   "create NAME [--role User|Power|Administrator] [--new-password P]",
		Short: "Create a user; without --new-password a password is generated and shown once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.connect()
			if err != nil {
				return err
			}
			u := &pb.User{Name: args[0], Roles: roles}
			if password != "" {
				u.Password = &password
			}
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			resp, err := c.user.Create(ctx, connect.NewRequest(&pb.UserServiceCreateRequest{User: u}))
			if err != nil {
				return apiErr("create user", err)
			}
			d := resp.Msg.Data
			if err := c.printUsers(cmd, d, []*pb.User{d}); err != nil {
				return err
			}
			if d.Password != nil && c.opts.Output == "table" {
				fmt.Fprintf(cmd.OutOrStdout(), "generated password (shown only now): %s\n", d.GetPassword())
			}
			return nil
		},
	}
	create.Flags().StringArrayVar(&roles, "role", nil, "role (repeatable; default User)")
	create.Flags().StringVar(&password, "new-password", "", "the new user's password (default: generated)")

	lst := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, _ []string, c *clients) error {
			resp, err := c.user.List(ctx, connect.NewRequest(&pb.UserServiceListRequest{}))
			if err != nil {
				return apiErr("list users", err)
			}
			return c.printUsers(cmd, list[*pb.User](resp.Msg.Data), resp.Msg.Data)
		}),
	}
	me := &cobra.Command{
		Use: "me", Short: "Show who you are", Args: cobra.NoArgs,
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, _ []string, c *clients) error {
			resp, err := c.user.GetMe(ctx, connect.NewRequest(&pb.UserServiceGetMeRequest{}))
			if err != nil {
				return apiErr("get me", err)
			}
			return c.printUsers(cmd, resp.Msg.Data, []*pb.User{resp.Msg.Data})
		}),
	}
	login := &cobra.Command{
		Use:   "login",
		Short: "Exchange the password for a bearer token (use it with --token or AQUARIUM_TOKEN)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := o.password()
			if err != nil {
				return err
			}
			c, err := o.connect()
			if err != nil {
				return err
			}
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			resp, err := c.auth.Login(ctx, connect.NewRequest(&pb.AuthServiceLoginRequest{Username: o.User, Password: pw}))
			if err != nil {
				return apiErr("login", err)
			}
			t := resp.Msg.Data
			if c.opts.Output != "table" {
				return c.print(cmd.OutOrStdout(), t, nil, nil)
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Token)
			return nil
		},
	}
	cmd.AddCommand(create, lst, me, login)
	rootCmd.AddCommand(cmd)
}

func (c *clients) printUsers(cmd *cobra.Command, data any, users []*pb.User) error {
	rows := make([]row, 0, len(users))
	for _, u := range users {
		rows = append(rows, row{u.Name, strings.Join(u.Roles, ","), fmtTime(u.CreatedAt, u.CreatedAt != nil)})
	}
	return c.print(cmd.OutOrStdout(), data, row{"NAME", "ROLES", "CREATED"}, rows)
}
