package server

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"
)

// ec2ErrorDoc is the EC2 Query error document.
type ec2ErrorDoc struct {
	XMLName xml.Name `xml:"Response"`
	Errors  []struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Errors>Error"`
	RequestID string `xml:"RequestID"`
}

// postForm sends a raw Query request and decodes the EC2 error document.
func postForm(t *testing.T, endpoint string, form url.Values) (int, ec2ErrorDoc) {
	t.Helper()
	resp, err := http.PostForm(endpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		t.Fatalf("Content-Type %q, want XML; body %s", ct, body)
	}
	var doc ec2ErrorDoc
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("answer is not the EC2 error document: %v\n%s", err, body)
	}
	return resp.StatusCode, doc
}

func TestMalformedQueryAnswersEC2XMLErrors(t *testing.T) {
	endpoint := NewTestServer(t, newCaptureWorld())
	base := func(kv ...string) url.Values {
		v := url.Values{"Version": {ec2Version}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	for name, tc := range map[string]struct {
		form      url.Values
		code, msg string
	}{
		"missing action":      {base(), "MissingParameter", "Action"},
		"unknown action":      {base("Action", "LaunchRockets"), "InvalidAction", "LaunchRockets"},
		"not an EC2 action":   {base("Action", "ListAliases"), "InvalidAction", "ListAliases"},
		"bad integer":         {base("Action", "RunInstances", "MaxCount", "many", "MinCount", "1"), "InvalidParameterValue", "MaxCount"},
		"integer overflow":    {base("Action", "RunInstances", "MaxCount", "99999999999"), "InvalidParameterValue", "MaxCount"},
		"bad boolean":         {base("Action", "DescribeImages", "IncludeDeprecated", "yes"), "InvalidParameterValue", "IncludeDeprecated"},
		"bad enum":            {base("Action", "RunInstances", "InstanceType", "mac9.huge"), "InvalidParameterValue", "InstanceType"},
		"bad nested enum":     {base("Action", "AllocateHosts", "AutoPlacement", "sometimes"), "InvalidParameterValue", "AutoPlacement"},
		"bad list index":      {base("Action", "DescribeHosts", "HostId.x", "h-1"), "InvalidParameterValue", "HostId.x"},
		"zero list index":     {base("Action", "DescribeHosts", "HostId.0", "h-1"), "InvalidParameterValue", "HostId.0"},
		"list without index":  {base("Action", "DescribeHosts", "HostId", "h-1"), "InvalidParameterValue", "HostId"},
		"unknown parameter":   {base("Action", "DescribeHosts", "Colour", "blue"), "UnknownParameter", "Colour"},
		"unknown member":      {base("Action", "DescribeHosts", "Filter.1.Nme", "state"), "UnknownParameter", "Filter.1.Nme"},
		"value on a struct":   {base("Action", "RunInstances", "Placement", "h-1"), "InvalidParameterValue", "Placement"},
		"repeated parameter":  {url.Values{"Action": {"DescribeHosts"}, "MaxResults": {"5", "6"}}, "InvalidParameterValue", "MaxResults"},
		"float for integer":   {base("Action", "DescribeHosts", "Filter.1.Name", "x", "Filter.1.Value.1", "y", "MaxResults", "1e3"), "InvalidParameterValue", "MaxResults"},
		"wrong API version":   {url.Values{"Action": {"DescribeHosts"}, "Version": {"2014-01-01"}}, "InvalidParameterValue", "Version"},
		"index out of bounds": {base("Action", "DescribeHosts", "HostId.100000", "h-1"), "InvalidParameterValue", "HostId.100000"},
	} {
		t.Run(name, func(t *testing.T) {
			status, doc := postForm(t, endpoint, tc.form)
			if status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", status)
			}
			if len(doc.Errors) != 1 || doc.Errors[0].Code != tc.code || !strings.Contains(doc.Errors[0].Message, tc.msg) {
				t.Fatalf("errors %+v, want code %s with a message naming %q", doc.Errors, tc.code, tc.msg)
			}
			if doc.RequestID == "" {
				t.Error("no RequestID")
			}
		})
	}
}

func TestRejectedCallsAreRecorded(t *testing.T) {
	w := newCaptureWorld()
	endpoint := NewTestServer(t, w)
	postForm(t, endpoint, url.Values{"Action": {"DescribeHosts"}, "MaxResults": {"x"}})
	if len(w.rejected) != 1 || !strings.HasPrefix(w.rejected[0], "DescribeHosts: ") {
		t.Fatalf("rejected calls %v, want one DescribeHosts", w.rejected)
	}
}

// panicWorld panics inside an action.
type panicWorld struct{ *captureWorld }

func (p *panicWorld) DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	panic("boom")
}

// failWorld returns errors that are not AWS errors, and AWS errors.
type failWorld struct{ *captureWorld }

func (f *failWorld) DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return nil, errors.New("disk on fire: secret-value-123")
}

func (f *failWorld) DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "NotFoundException", Message: "Alias arn:aws:kms:us-west-2:123456789012:alias/nope is not found."}
}

func TestPanicsAndInternalErrorsAnswerProtocolErrors(t *testing.T) {
	for name, w := range map[string]World{"panic": &panicWorld{newCaptureWorld()}, "plain error": &failWorld{newCaptureWorld()}} {
		t.Run(name, func(t *testing.T) {
			endpoint := NewTestServer(t, w)
			status, doc := postForm(t, endpoint, url.Values{"Action": {"DescribeVpcs"}, "Version": {ec2Version}})
			if status != http.StatusInternalServerError || len(doc.Errors) != 1 || doc.Errors[0].Code != "InternalError" {
				t.Fatalf("status %d errors %+v, want 500 InternalError", status, doc.Errors)
			}
			if strings.Contains(doc.Errors[0].Message, "secret") || strings.Contains(doc.Errors[0].Message, "boom") {
				t.Fatalf("internal detail leaked: %q", doc.Errors[0].Message)
			}
			// The SDK sees a server fault it can classify.
			_, err := ec2.NewFromConfig(SDKConfig(endpoint, "us-west-2")).DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "InternalError" {
				t.Fatalf("SDK error %v, want InternalError", err)
			}
		})
	}
}

func TestJSONErrors(t *testing.T) {
	endpoint := NewTestServer(t, &failWorld{newCaptureWorld()})
	cl := kms.NewFromConfig(SDKConfig(endpoint, "us-west-2"))
	_, err := cl.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String("alias/nope")})
	var nf interface{ ErrorCode() string }
	if !errors.As(err, &nf) || nf.ErrorCode() != "NotFoundException" {
		t.Fatalf("err %v, want NotFoundException", err)
	}

	post := func(target, body string) (int, map[string]string) {
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", jsonContentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatalf("%s: answer is not JSON: %v", target, err)
		}
		return resp.StatusCode, doc
	}
	for name, tc := range map[string]struct{ target, body, code, msg string }{
		"unknown op":      {"TrentService.Encrypt", `{}`, "UnknownOperationException", "Encrypt"},
		"unknown service": {"DynamoDB_20120810.ListTables", `{}`, "UnknownOperationException", "DynamoDB"},
		"bad json":        {"TrentService.ListAliases", `{"Limit":`, "SerializationException", "JSON"},
		"wrong type":      {"TrentService.ListAliases", `{"Limit":"ten"}`, "SerializationException", "Limit"},
		"int overflow":    {"TrentService.ListAliases", `{"Limit":1e20}`, "InvalidParameterValue", "Limit"},
		"unknown member":  {"ServiceQuotasV20190624.ListServiceQuotas", `{"ServiceCode":"ec2","Colour":1}`, "SerializationException", "Colour"},
		"bad enum":        {"ServiceQuotasV20190624.ListServiceQuotas", `{"ServiceCode":"ec2","QuotaAppliedAtLevel":"GALAXY"}`, "InvalidParameterValue", "QuotaAppliedAtLevel"},
		"trailing data":   {"TrentService.ListAliases", `{} {}`, "SerializationException", "trailing"},
	} {
		t.Run(name, func(t *testing.T) {
			status, doc := post(tc.target, tc.body)
			if status != http.StatusBadRequest || doc["__type"] != tc.code || !strings.Contains(doc["message"], tc.msg) {
				t.Fatalf("status %d doc %v, want 400 %s naming %q", status, doc, tc.code, tc.msg)
			}
		})
	}
}
