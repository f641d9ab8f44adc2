package server

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/http"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
)

const (
	stsVersion   = "2011-06-15"
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
)

var stsPkg = reflect.TypeFor[sts.GetCallerIdentityInput]().PkgPath()

// stsQueryName names STS Query parameters: the member name itself.
func stsQueryName(_ reflect.Type, f reflect.StructField) string { return f.Name }

// serveSTS answers one STS Query request.
func (s *Server) serveSTS(ctx context.Context, rw http.ResponseWriter, r *http.Request, reqID string) {
	action := r.Form.Get("Action")
	if action == "" {
		err := awsemu.Errorf("MissingParameter", "The request must contain the parameter Action")
		s.world.RecordCall("", err)
		writeSTSError(rw, reqID, err)
		return
	}
	m, ok := s.lookup(action, stsPkg)
	if !ok {
		err := awsemu.Errorf("InvalidAction", "Could not find operation %s for version %s", recordName(action), stsVersion)
		s.world.RecordCall(recordName(action), err)
		writeSTSError(rw, reqID, err)
		return
	}
	in, err := decodeQuery(r.Form, m.input.Elem(), stsQueryName)
	if err != nil {
		s.world.RecordCall(action, err)
		writeSTSError(rw, reqID, s.apiError(action, err))
		return
	}
	out, err := m.call(ctx, in)
	if err != nil {
		writeSTSError(rw, reqID, s.apiError(action, err))
		return
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<" + action + "Response xmlns=\"" + stsNamespace + "\"><" + action + "Result>")
	e := &xmlEncoder{buf: &b, name: queryXMLName, plans: &queryPlans, item: "member"}
	if !out.IsNil() {
		e.fields(out.Elem())
	}
	b.WriteString("</" + action + "Result><ResponseMetadata><RequestId>")
	e.text(reqID)
	b.WriteString("</RequestId></ResponseMetadata></" + action + "Response>")
	rw.Header().Set("Content-Type", "text/xml")
	rw.Header().Set("x-amzn-RequestId", reqID)
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(b.Bytes())
}

// writeSTSError writes the AWS Query error document.
func writeSTSError(rw http.ResponseWriter, reqID string, err *awsemu.APIError) {
	typ := "Sender"
	if err.Status() >= 500 {
		typ = "Receiver"
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<ErrorResponse xmlns=\"" + stsNamespace + "\"><Error><Type>" + typ + "</Type><Code>")
	_ = xml.EscapeText(&b, []byte(err.Code))
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(err.Message))
	b.WriteString("</Message></Error><RequestId>")
	_ = xml.EscapeText(&b, []byte(reqID))
	b.WriteString("</RequestId></ErrorResponse>")
	rw.Header().Set("Content-Type", "text/xml")
	rw.Header().Set("x-amzn-RequestId", reqID)
	rw.WriteHeader(err.Status())
	_, _ = rw.Write(b.Bytes())
}
