package awsemu

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	sqtypes "github.com/aws/aws-sdk-go-v2/service/servicequotas/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/crypto/ssh"
)

// ---- key pairs ----

type keyPair struct {
	objBase
	name        string
	ktype       types.KeyType
	fingerprint string
	publicKey   string // OpenSSH authorized_keys form
	created     time.Time
	tags        tagSet
}

func (k *keyPair) tagList() tagSet { return k.tags }

func (k *keyPair) filterValues(name string, w *World) []string {
	switch name {
	case "key-pair-id":
		return append(w.fbuf[:0], k.id)
	case "key-name":
		return append(w.fbuf[:0], k.name)
	case "fingerprint":
		return append(w.fbuf[:0], k.fingerprint)
	case "key-type":
		return append(w.fbuf[:0], string(k.ktype))
	}
	return nil
}

var keyFilters = set("key-pair-id", "key-name", "fingerprint", "key-type")

func (w *World) keyByName(name string) *keyPair { return w.keyNames[name] }

// genKey creates a key pair and returns its private key in PEM form.
func genKey(kt types.KeyType) (pemKey, fingerprint, pub string, err error) {
	switch kt {
	case "", types.KeyTypeRsa:
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", "", "", fmt.Errorf("generate rsa key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return "", "", "", fmt.Errorf("marshal rsa key: %w", err)
		}
		sum := sha1.Sum(der)
		hexs := make([]string, len(sum))
		for i, b := range sum {
			hexs[i] = fmt.Sprintf("%02x", b)
		}
		sp, err := ssh.NewPublicKey(&priv.PublicKey)
		if err != nil {
			return "", "", "", fmt.Errorf("ssh public key: %w", err)
		}
		pemKey = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)}))
		return pemKey, strings.Join(hexs, ":"), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))), nil
	case types.KeyTypeEd25519:
		pubk, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", "", "", fmt.Errorf("generate ed25519 key: %w", err)
		}
		blk, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			return "", "", "", fmt.Errorf("marshal ed25519 key: %w", err)
		}
		sp, err := ssh.NewPublicKey(pubk)
		if err != nil {
			return "", "", "", fmt.Errorf("ssh public key: %w", err)
		}
		sum := sha256.Sum256(sp.Marshal())
		return string(pem.EncodeToMemory(blk)), base64.StdEncoding.EncodeToString(sum[:]), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))), nil
	}
	return "", "", "", Errorf("InvalidParameterValue", "Value (%s) for parameter keyType is invalid. Valid values: rsa, ed25519.", kt)
}

func (w *World) addKeyPair(name string, kt types.KeyType, tags tagSet) (*keyPair, string, error) {
	if kt == "" {
		kt = types.KeyTypeRsa
	}
	pemKey, fp, pub, err := genKey(kt)
	if err != nil {
		return nil, "", err
	}
	k := &keyPair{objBase: w.newObj("key"), name: name, ktype: kt, fingerprint: fp, publicKey: pub + " " + name, created: w.now, tags: tags}
	w.keyPairs.add(k)
	w.keyNames[name] = k
	return k, pemKey, nil
}

// CreateKeyPair creates a key pair and returns its private key (PEM).
func (w *World) CreateKeyPair(ctx context.Context, in *ec2.CreateKeyPairInput, _ ...func(*ec2.Options)) (*ec2.CreateKeyPairOutput, error) {
	return serve(ctx, w, "CreateKeyPair", in, func(in *ec2.CreateKeyPairInput) (*ec2.CreateKeyPairOutput, error) {
		name := aws.ToString(in.KeyName)
		if name == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter KeyName")
		}
		if len(name) > 255 {
			return nil, Errorf("InvalidParameterValue", "Value for parameter keyName is invalid. Length exceeds maximum of 255.")
		}
		if in.KeyFormat != "" && in.KeyFormat != types.KeyFormatPem {
			return nil, Errorf("InvalidParameterValue", "Value (%s) for parameter keyFormat is not supported by the emulator (only pem).", in.KeyFormat)
		}
		if w.keyByName(name) != nil {
			return nil, Errorf("InvalidKeyPair.Duplicate", "The keypair '%s' already exists.", name)
		}
		tags, err := tagSpecs(in.TagSpecifications, types.ResourceTypeKeyPair)
		if err != nil {
			return nil, err
		}
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		k, pemKey, err := w.addKeyPair(name, in.KeyType, tags[types.ResourceTypeKeyPair])
		if err != nil {
			return nil, err
		}
		return &ec2.CreateKeyPairOutput{KeyName: aws.String(k.name), KeyPairId: aws.String(k.id),
			KeyFingerprint: aws.String(k.fingerprint), KeyMaterial: aws.String(pemKey), Tags: k.tags.sdk()}, nil
	})
}

// DeleteKeyPair deletes a key pair by name or id (a missing key is not an error, like AWS).
func (w *World) DeleteKeyPair(ctx context.Context, in *ec2.DeleteKeyPairInput, _ ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error) {
	return serve(ctx, w, "DeleteKeyPair", in, func(in *ec2.DeleteKeyPairInput) (*ec2.DeleteKeyPairOutput, error) {
		name, id := aws.ToString(in.KeyName), aws.ToString(in.KeyPairId)
		if name == "" && id == "" {
			return nil, Errorf("MissingParameter", "The request must contain the parameter KeyName or KeyPairId")
		}
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		var k *keyPair
		if id != "" {
			k, _ = w.keyPairs.get(id)
		} else {
			k = w.keyByName(name)
		}
		out := &ec2.DeleteKeyPairOutput{Return: aws.Bool(true)}
		if k != nil {
			w.keyPairs.remove(k.id)
			delete(w.keyNames, k.name)
			out.KeyPairId = aws.String(k.id)
		}
		return out, nil
	})
}

// DescribeKeyPairs lists key pairs.
func (w *World) DescribeKeyPairs(ctx context.Context, in *ec2.DescribeKeyPairsInput, _ ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error) {
	return serve(ctx, w, "DescribeKeyPairs", in, func(in *ec2.DescribeKeyPairsInput) (*ec2.DescribeKeyPairsOutput, error) {
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		fs, err := compileFilters(in.Filters, keyFilters)
		if err != nil {
			return nil, err
		}
		var sel []*keyPair
		explicit := len(in.KeyNames) > 0 || len(in.KeyPairIds) > 0
		for _, n := range in.KeyNames {
			k := w.keyByName(n)
			if k == nil {
				return nil, Errorf("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", n)
			}
			sel = append(sel, k)
		}
		for _, id := range in.KeyPairIds {
			k, ok := w.keyPairs.get(id)
			if !ok {
				return nil, Errorf("InvalidKeyPair.NotFound", "The key pair ID '%s' does not exist", id)
			}
			sel = append(sel, k)
		}
		src := w.keyPairs.all(0)
		if explicit {
			src = sliceSeq(dedupeSorted(sel))
		}
		items, _ := collect(src, pager{}, func(k *keyPair) bool { return w.matches(k, fs) })
		out := &ec2.DescribeKeyPairsOutput{KeyPairs: make([]types.KeyPairInfo, 0, len(items))}
		for _, k := range items {
			info := types.KeyPairInfo{KeyName: aws.String(k.name), KeyPairId: aws.String(k.id), KeyFingerprint: aws.String(k.fingerprint),
				KeyType: k.ktype, CreateTime: aws.Time(k.created), Tags: k.tags.sdk()}
			if aws.ToBool(in.IncludePublicKey) {
				info.PublicKey = aws.String(k.publicKey)
			}
			out.KeyPairs = append(out.KeyPairs, info)
		}
		return out, nil
	})
}

// ---- tags ----

// CreateTags adds or overwrites tags on resources of any emulated kind.
func (w *World) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	return serve(ctx, w, "CreateTags", in, func(in *ec2.CreateTagsInput) (*ec2.CreateTagsOutput, error) {
		if len(in.Resources) == 0 {
			return nil, Errorf("MissingParameter", "The request must contain the parameter resourceIdSet")
		}
		if len(in.Tags) == 0 {
			return nil, Errorf("MissingParameter", "The request must contain the parameter tagSet")
		}
		add, err := validateTags(in.Tags)
		if err != nil {
			return nil, err
		}
		var targets []*tagSet
		for _, id := range in.Resources {
			ts, err := w.tagsOf(id)
			if err != nil {
				return nil, err
			}
			targets = append(targets, ts)
		}
		for _, ts := range targets {
			// a copy: launches share one set between objects (see parsedTags)
			*ts = slices.Clone(*ts)
			for _, t := range add {
				ts.set(t.k, t.v)
			}
			if len(*ts) > 50 {
				return nil, Errorf("TagLimitExceeded", "The maximum number of tags per resource is 50.")
			}
		}
		if err := dryRun(in.DryRun); err != nil {
			return nil, err
		}
		return &ec2.CreateTagsOutput{}, nil
	})
}

func (w *World) tagsOf(id string) (*tagSet, error) {
	prefix, _, _ := strings.Cut(id, "-")
	nf := func(code, what string) error { return Errorf(code, "The %s '%s' does not exist", what, id) }
	switch prefix {
	case "i":
		if v, ok := w.instances.get(id); ok {
			return &v.tags, nil
		}
		return nil, nf("InvalidInstanceID.NotFound", "instance ID")
	case "h":
		if v, ok := w.hosts.get(id); ok {
			return &v.tags, nil
		}
		return nil, nf("InvalidHostID.NotFound", "host ID")
	case "ami":
		if v, ok := w.images.get(id); ok && v.ownerID == w.spec.AccountID {
			return &v.tags, nil
		}
		return nil, Errorf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
	case "snap":
		if v, ok := w.snapshots.get(id); ok && v.ownerID == w.spec.AccountID {
			return &v.tags, nil
		}
		return nil, Errorf("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
	case "vol":
		if v, ok := w.volumes.get(id); ok {
			return &v.tags, nil
		}
		return nil, nf("InvalidVolume.NotFound", "volume")
	case "vpc":
		if v, ok := w.vpcs.get(id); ok {
			return &v.tags, nil
		}
		return nil, nf("InvalidVpcID.NotFound", "vpc ID")
	case "subnet":
		if v, ok := w.subnets.get(id); ok {
			return &v.tags, nil
		}
		return nil, nf("InvalidSubnetID.NotFound", "subnet ID")
	case "sg":
		if v, ok := w.groups.get(id); ok {
			return &v.tags, nil
		}
		return nil, nf("InvalidGroup.NotFound", "security group")
	case "key":
		if v, ok := w.keyPairs.get(id); ok {
			return &v.tags, nil
		}
		return nil, nf("InvalidKeyPair.NotFound", "key pair ID")
	}
	return nil, Errorf("InvalidID", "The ID '%s' is not valid", id)
}

// ---- KMS ----

type kmsKey struct {
	objBase     // id is the key UUID
	description string
	managed     bool
	enabled     bool
	created     time.Time
}

func (k *kmsKey) arn(w *World) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", w.spec.Region, w.spec.AccountID, k.id)
}

type kmsAlias struct {
	objBase // id is the alias name ("alias/x")
	target  *kmsKey
	created time.Time
}

func (w *World) aliasARN(name string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:%s", w.spec.Region, w.spec.AccountID, name)
}

func (w *World) ebsDefaultKey() *kmsKey {
	a, _ := w.aliases.get("alias/aws/ebs")
	return a.target
}

// resolveKMS accepts a key id, key ARN, alias name or alias ARN.
func (w *World) resolveKMS(ref string) (*kmsKey, error) {
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		parts := strings.SplitN(ref, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" {
			return nil, kmsNotFound(ref)
		}
		if parts[3] != w.spec.Region || parts[4] != w.spec.AccountID {
			return nil, kmsNotFound(ref)
		}
		name = parts[5]
		name = strings.TrimPrefix(name, "key/")
	}
	if strings.HasPrefix(name, "alias/") {
		a, ok := w.aliases.get(name)
		if !ok {
			return nil, &APIError{Code: "NotFoundException", Message: fmt.Sprintf("Alias %s is not found.", w.aliasARN(name)), HTTPStatus: 400}
		}
		return a.target, nil
	}
	k, ok := w.kmsKeys.get(name)
	if !ok {
		return nil, kmsNotFound(ref)
	}
	return k, nil
}

func kmsNotFound(ref string) error {
	return &APIError{Code: "NotFoundException", Message: fmt.Sprintf("Key '%s' does not exist", ref), HTTPStatus: 400}
}

// ListAliases lists KMS aliases (paged by Limit/Marker).
func (w *World) ListAliases(ctx context.Context, in *kms.ListAliasesInput, _ ...func(*kms.Options)) (*kms.ListAliasesOutput, error) {
	return serve(ctx, w, "ListAliases", in, func(in *kms.ListAliasesInput) (*kms.ListAliasesOutput, error) {
		limit := 50
		if in.Limit != nil {
			if *in.Limit < 1 || *in.Limit > 100 {
				return nil, &APIError{Code: "ValidationException", Message: fmt.Sprintf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100", *in.Limit), HTTPStatus: 400}
			}
			limit = int(*in.Limit)
		} else if w.spec.DefaultPageSize > 0 {
			limit = w.spec.DefaultPageSize
		}
		var after uint64
		if m := aws.ToString(in.Marker); m != "" {
			seq, ok := decodeToken("alias", m)
			if !ok {
				return nil, &APIError{Code: "InvalidMarkerException", Message: "Invalid marker.", HTTPStatus: 400}
			}
			after = seq
		}
		var target *kmsKey
		if in.KeyId != nil {
			k, err := w.resolveKMS(*in.KeyId)
			if err != nil {
				return nil, err
			}
			target = k
		}
		items, next := collect(w.aliases.all(after), pager{after: after, limit: limit, kind: "alias"}, func(a *kmsAlias) bool {
			return target == nil || a.target == target
		})
		out := &kms.ListAliasesOutput{Aliases: make([]kmstypes.AliasListEntry, 0, len(items))}
		for _, a := range items {
			out.Aliases = append(out.Aliases, kmstypes.AliasListEntry{
				AliasName: aws.String(a.id), AliasArn: aws.String(w.aliasARN(a.id)), TargetKeyId: aws.String(a.target.id),
				CreationDate: aws.Time(a.created), LastUpdatedDate: aws.Time(a.created),
			})
		}
		if next != nil {
			out.NextMarker = next
			out.Truncated = true
		}
		return out, nil
	})
}

// DescribeKey describes a KMS key given by id, ARN, alias name or alias ARN.
func (w *World) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	return serve(ctx, w, "DescribeKey", in, func(in *kms.DescribeKeyInput) (*kms.DescribeKeyOutput, error) {
		if aws.ToString(in.KeyId) == "" {
			return nil, &APIError{Code: "ValidationException", Message: "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null", HTTPStatus: 400}
		}
		k, err := w.resolveKMS(*in.KeyId)
		if err != nil {
			return nil, err
		}
		md := &kmstypes.KeyMetadata{
			KeyId: aws.String(k.id), Arn: aws.String(k.arn(w)), AWSAccountId: aws.String(w.spec.AccountID),
			CreationDate: aws.Time(k.created), Description: aws.String(k.description), Enabled: k.enabled,
			KeyState: kmstypes.KeyStateEnabled, KeyUsage: kmstypes.KeyUsageTypeEncryptDecrypt,
			KeySpec:              kmstypes.KeySpecSymmetricDefault,
			EncryptionAlgorithms: []kmstypes.EncryptionAlgorithmSpec{kmstypes.EncryptionAlgorithmSpecSymmetricDefault},
			KeyManager:           kmstypes.KeyManagerTypeCustomer, Origin: kmstypes.OriginTypeAwsKms, MultiRegion: aws.Bool(false),
		}
		if k.managed {
			md.KeyManager = kmstypes.KeyManagerTypeAws
		}
		if !k.enabled {
			md.KeyState = kmstypes.KeyStateDisabled
		}
		return &kms.DescribeKeyOutput{KeyMetadata: md}, nil
	})
}

// ---- service quotas ----

type quota struct {
	service, code, name, unit string
	value                     float64
}

func (w *World) quotaByCode(service, code string) *quota {
	for _, q := range w.quotas {
		if q.service == service && q.code == code {
			return q
		}
	}
	return nil
}

var serviceNames = map[string]string{"ec2": "Amazon Elastic Compute Cloud (Amazon EC2)"}

func (w *World) listQuotas(service, code string, maxResults *int32, token *string, kind string, withAccount bool) ([]sqtypes.ServiceQuota, *string, error) {
	if service == "" {
		return nil, nil, &APIError{Code: "IllegalArgumentException", Message: "ServiceCode is required.", HTTPStatus: 400}
	}
	if _, ok := serviceNames[service]; !ok {
		return nil, nil, &APIError{Code: "NoSuchResourceException", Message: fmt.Sprintf("The request failed because the specified service does not exist: %s", service), HTTPStatus: 400}
	}
	limit := w.spec.DefaultPageSize
	if maxResults != nil {
		if *maxResults < 1 || *maxResults > 100 {
			return nil, nil, &APIError{Code: "IllegalArgumentException", Message: "MaxResults must be between 1 and 100.", HTTPStatus: 400}
		}
		limit = int(*maxResults)
	}
	start := 0
	if t := aws.ToString(token); t != "" {
		seq, ok := decodeToken(kind, t)
		if !ok {
			return nil, nil, &APIError{Code: "InvalidPaginationTokenException", Message: "Invalid pagination token.", HTTPStatus: 400}
		}
		start = int(seq)
	}
	var out []sqtypes.ServiceQuota
	var next *string
	for i := start; i < len(w.quotas); i++ {
		q := w.quotas[i]
		if q.service != service || (code != "" && q.code != code) {
			continue
		}
		if limit > 0 && len(out) == limit {
			next = encodeToken(kind, uint64(i))
			break
		}
		acct := w.spec.AccountID
		if !withAccount {
			acct = ""
		}
		out = append(out, sqtypes.ServiceQuota{
			ServiceCode: aws.String(q.service), ServiceName: aws.String(serviceNames[q.service]),
			QuotaCode: aws.String(q.code), QuotaName: aws.String(q.name), Value: aws.Float64(q.value), Unit: aws.String(q.unit),
			QuotaArn:            aws.String(fmt.Sprintf("arn:aws:servicequotas:%s:%s:%s/%s", w.spec.Region, acct, q.service, q.code)),
			Adjustable:          true,
			GlobalQuota:         false,
			QuotaAppliedAtLevel: sqtypes.AppliedLevelEnumAccount,
		})
	}
	return out, next, nil
}

// ListServiceQuotas lists the applied quota values of a service.
func (w *World) ListServiceQuotas(ctx context.Context, in *servicequotas.ListServiceQuotasInput, _ ...func(*servicequotas.Options)) (*servicequotas.ListServiceQuotasOutput, error) {
	return serve(ctx, w, "ListServiceQuotas", in, func(in *servicequotas.ListServiceQuotasInput) (*servicequotas.ListServiceQuotasOutput, error) {
		qs, next, err := w.listQuotas(aws.ToString(in.ServiceCode), aws.ToString(in.QuotaCode), in.MaxResults, in.NextToken, "quota", true)
		if err != nil {
			return nil, err
		}
		return &servicequotas.ListServiceQuotasOutput{Quotas: qs, NextToken: next}, nil
	})
}

// ListAWSDefaultServiceQuotas lists the default quota values of a service.
func (w *World) ListAWSDefaultServiceQuotas(ctx context.Context, in *servicequotas.ListAWSDefaultServiceQuotasInput, _ ...func(*servicequotas.Options)) (*servicequotas.ListAWSDefaultServiceQuotasOutput, error) {
	return serve(ctx, w, "ListAWSDefaultServiceQuotas", in, func(in *servicequotas.ListAWSDefaultServiceQuotasInput) (*servicequotas.ListAWSDefaultServiceQuotasOutput, error) {
		qs, next, err := w.listQuotas(aws.ToString(in.ServiceCode), "", in.MaxResults, in.NextToken, "dquota", false)
		if err != nil {
			return nil, err
		}
		return &servicequotas.ListAWSDefaultServiceQuotasOutput{Quotas: qs, NextToken: next}, nil
	})
}

// ---- STS ----

// GetCallerIdentity answers the emulated account and an IAM user ARN.
func (w *World) GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, _ ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return serve(ctx, w, "GetCallerIdentity", in, func(*sts.GetCallerIdentityInput) (*sts.GetCallerIdentityOutput, error) {
		return &sts.GetCallerIdentityOutput{
			Account: aws.String(w.spec.AccountID),
			Arn:     aws.String("arn:aws:iam::" + w.spec.AccountID + ":user/aquarium-fish"),
			UserId:  aws.String("AIDA" + strings.ToUpper(strconv.FormatUint(w.idBase, 36))),
		}, nil
	})
}
