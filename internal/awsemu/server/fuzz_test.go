package server

import (
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
)

var fuzzSeeds = []string{
	"Action=RunInstances&Version=2016-11-15&ImageId=ami-1&MinCount=1&MaxCount=1&InstanceType=mac2.metal",
	"Action=RunInstances&SecurityGroupId.1=sg-1&SecurityGroupId.2=sg-2&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=a&TagSpecification.1.Tag.1.Value=b",
	"Action=RunInstances&BlockDeviceMapping.1.DeviceName=%2Fdev%2Fsda1&BlockDeviceMapping.1.Ebs.VolumeSize=50&BlockDeviceMapping.1.Ebs.Encrypted=true&Placement.HostId=h-1",
	"Action=DescribeHosts&Filter.1.Name=state&Filter.1.Value.1=available&Filter.1.Value.2=pending&MaxResults=5&NextToken=abc",
	"Action=DescribeHosts&HostId.1=h-1&HostId.3=h-3&HostId.2=h-2",
	"Action=DescribeImages&Owner.1=amazon&IncludeDeprecated=false",
	"Action=CreateSnapshots&InstanceSpecification.InstanceId=i-1&InstanceSpecification.ExcludeBootVolume=true",
	"Action=DescribeHosts&HostId.x=1&Filter.99999999999.Name=a&Filter..Name=b&=&%ff=%fe",
	"Action=RunInstances&MaxCount=-99999999999&MinCount=1e9&Placement=x&Placement.HostId.1=y",
}

// FuzzDecodeQuery feeds arbitrary Query strings to the form decoder for a
// few input types: it must never panic, and every failure is an AWS error
// with a code.
func FuzzDecodeQuery(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	types := []reflect.Type{
		reflect.TypeFor[ec2.RunInstancesInput](),
		reflect.TypeFor[ec2.DescribeHostsInput](),
		reflect.TypeFor[ec2.CreateSnapshotsInput](),
		reflect.TypeFor[ec2.DescribeImagesInput](),
	}
	f.Fuzz(func(t *testing.T, raw string) {
		form, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, typ := range types {
			v, err := decodeQuery(form, typ, ec2QueryName)
			if err != nil {
				var ae *awsemu.APIError
				if !errors.As(err, &ae) || ae.Code == "" || ae.Status() != http.StatusBadRequest {
					t.Fatalf("%s: error %v is not a 400 AWS error", typ, err)
				}
				continue
			}
			if v.Type() != reflect.PointerTo(typ) {
				t.Fatalf("decoded %s, want *%s", v.Type(), typ)
			}
		}
	})
}

// FuzzEC2Handler posts arbitrary bodies to the whole handler: the answer is
// always well-formed XML, an EC2 error document for any non-200 status.
func FuzzEC2Handler(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	h := New(newCaptureWorld(), Options{})
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			if err := xml.Unmarshal(rec.Body.Bytes(), new(struct{})); err != nil {
				t.Fatalf("200 answer is not XML: %v\n%s", err, rec.Body)
			}
			return
		}
		var doc ec2ErrorDoc
		if err := xml.Unmarshal(rec.Body.Bytes(), &doc); err != nil || len(doc.Errors) != 1 || doc.Errors[0].Code == "" {
			t.Fatalf("status %d answer is not an EC2 error document (%v):\n%s", rec.Code, err, rec.Body)
		}
	})
}
