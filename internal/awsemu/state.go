package awsemu

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// State is a JSON-marshalable snapshot of the whole world.
type State struct {
	Time           time.Time                 `json:"time"`
	AccountID      string                    `json:"account_id"`
	Region         string                    `json:"region"`
	Zones          []string                  `json:"zones"`
	Hosts          []types.Host              `json:"hosts"`
	Instances      []types.Instance          `json:"instances"`
	Images         []types.Image             `json:"images"`
	Snapshots      []types.Snapshot          `json:"snapshots"`
	Volumes        []types.Volume            `json:"volumes"`
	KeyPairs       []types.KeyPairInfo       `json:"key_pairs"`
	Vpcs           []types.Vpc               `json:"vpcs"`
	Subnets        []types.Subnet            `json:"subnets"`
	SecurityGroups []types.SecurityGroup     `json:"security_groups"`
	KMSAliases     []kmstypes.AliasListEntry `json:"kms_aliases"`
	Quotas         []QuotaSpec               `json:"quotas"`
	Faults         []FaultRule               `json:"faults"`
	Calls          map[string]ActionStats    `json:"calls"`
	Billing        BillingSummary            `json:"billing"`
}

// BillingSummary totals the ledger since the first allocation and for the
// current calendar month (UTC).
type BillingSummary struct {
	TotalHostHours       float64 `json:"total_host_hours"`
	TotalInstanceHours   float64 `json:"total_instance_hours"`
	MonthHostHours       float64 `json:"month_host_hours"`
	MonthInstanceHours   float64 `json:"month_instance_hours"`
	HostsEverAllocated   int     `json:"hosts_ever_allocated"`
	InstancesEverStarted int     `json:"instances_ever_started"`
}

// State returns a fresh snapshot of everything in the world.
func (w *World) State() *State {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = maxTime(w.now, w.clk.Now())
	w.purge()
	s := &State{Time: w.now, AccountID: w.spec.AccountID, Region: w.spec.Region, Zones: append([]string(nil), w.spec.Zones...), Calls: map[string]ActionStats{}}
	w.hosts.each(0, func(h *host) bool { s.Hosts = append(s.Hosts, h.sdk(w)); return true })
	w.instances.each(0, func(i *instance) bool { s.Instances = append(s.Instances, w.instanceSDK(i)); return true })
	w.images.each(0, func(i *image) bool { s.Images = append(s.Images, i.sdk(w)); return true })
	w.snapshots.each(0, func(x *snapshot) bool { s.Snapshots = append(s.Snapshots, x.sdk(w)); return true })
	w.volumes.each(0, func(x *volume) bool { s.Volumes = append(s.Volumes, x.sdk(w)); return true })
	w.keyPairs.each(0, func(k *keyPair) bool {
		s.KeyPairs = append(s.KeyPairs, types.KeyPairInfo{KeyName: aws.String(k.name), KeyPairId: aws.String(k.id),
			KeyFingerprint: aws.String(k.fingerprint), KeyType: k.ktype, CreateTime: aws.Time(k.created), Tags: k.tags.sdk()})
		return true
	})
	w.vpcs.each(0, func(v *vpc) bool { s.Vpcs = append(s.Vpcs, v.sdk(w)); return true })
	w.subnets.each(0, func(x *subnet) bool { s.Subnets = append(s.Subnets, x.sdk(w)); return true })
	w.groups.each(0, func(g *securityGroup) bool { s.SecurityGroups = append(s.SecurityGroups, g.sdk(w)); return true })
	w.aliases.each(0, func(a *kmsAlias) bool {
		s.KMSAliases = append(s.KMSAliases, kmstypes.AliasListEntry{AliasName: aws.String(a.id), AliasArn: aws.String(w.aliasARN(a.id)),
			TargetKeyId: aws.String(a.target.id), CreationDate: aws.Time(a.created)})
		return true
	})
	for _, q := range w.quotas {
		s.Quotas = append(s.Quotas, QuotaSpec{Service: q.service, Code: q.code, Name: q.name, Value: q.value, Unit: q.unit})
	}
	for _, f := range w.faults {
		r := f.rule
		r.Count = f.remaining
		s.Faults = append(s.Faults, r)
	}
	for k, v := range w.calls {
		s.Calls[k] = *v
	}
	all := w.billing(time.Time{}, w.now.Add(time.Nanosecond), false)
	y, m, _ := w.now.UTC().Date()
	from := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	month := w.billing(from, from.AddDate(0, 1, 0), false)
	s.Billing = BillingSummary{
		TotalHostHours: all.HostHours(), TotalInstanceHours: all.InstanceHours(),
		MonthHostHours: month.HostHours(), MonthInstanceHours: month.InstanceHours(),
		HostsEverAllocated: w.ledger.hostsEver, InstancesEverStarted: w.ledger.instsEver,
	}
	return s
}
