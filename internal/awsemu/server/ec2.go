package server

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"reflect"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
)

// ec2Version is the only EC2 API version there is for the SDK.
const ec2Version = "2016-11-15"

var ec2Pkg = reflect.TypeFor[ec2.RunInstancesInput]().PkgPath()

// serveEC2 answers one EC2 Query request.
func (s *Server) serveEC2(ctx context.Context, rw http.ResponseWriter, r *http.Request, reqID string) {
	action := r.Form.Get("Action")
	if action == "" {
		err := awsemu.Errorf("MissingParameter", "The request must contain the parameter Action")
		s.world.RecordCall("", err)
		writeEC2Error(rw, reqID, err)
		return
	}
	if v := r.Form.Get("Version"); v != "" && v != ec2Version {
		err := awsemu.Errorf("InvalidParameterValue", "The parameter Version %q is not supported; the emulator serves EC2 API version %s", truncate(v, 32), ec2Version)
		s.world.RecordCall(recordName(action), err)
		writeEC2Error(rw, reqID, err)
		return
	}
	m, ok := method{}, ec2Actions[action]
	if ok {
		m, ok = s.lookup(action, ec2Pkg)
	}
	if !ok {
		err := awsemu.Errorf("InvalidAction", "The action %s is not valid for this web service.", recordName(action))
		s.world.RecordCall(recordName(action), err)
		writeEC2Error(rw, reqID, err)
		return
	}
	in, err := decodeQuery(r.Form, m.input.Elem(), ec2QueryName)
	if err != nil {
		s.world.RecordCall(action, err)
		writeEC2Error(rw, reqID, s.apiError(action, err))
		return
	}
	out, err := m.call(ctx, in)
	if err != nil {
		writeEC2Error(rw, reqID, s.apiError(action, err))
		return
	}
	body := encodeEC2(action, reqID, out)
	rw.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	rw.Header().Set("x-amzn-RequestId", reqID)
	rw.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(body)
}

// apiError converts a world error into an *awsemu.APIError; anything that is
// not an AWS error becomes a 500 InternalError and is logged.
func (s *Server) apiError(action string, err error) *awsemu.APIError {
	var ae *awsemu.APIError
	if errors.As(err, &ae) {
		return ae
	}
	var se smithy.APIError
	if errors.As(err, &se) {
		st := http.StatusBadRequest
		if se.ErrorFault() == smithy.FaultServer {
			st = http.StatusInternalServerError
		}
		return &awsemu.APIError{Code: se.ErrorCode(), Message: se.ErrorMessage(), HTTPStatus: st}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &awsemu.APIError{Code: "RequestCanceled", Message: "the request was canceled", HTTPStatus: http.StatusServiceUnavailable}
	}
	s.log.Warn("emulator: world returned a non-AWS error", "action", action, "err", err)
	return &awsemu.APIError{Code: "InternalError", Message: "An internal error has occurred", HTTPStatus: http.StatusInternalServerError}
}

// writeEC2Error writes the EC2 Query error document.
func writeEC2Error(rw http.ResponseWriter, reqID string, err *awsemu.APIError) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<Response><Errors><Error><Code>")
	_ = xml.EscapeText(&b, []byte(err.Code))
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(err.Message))
	b.WriteString("</Message></Error></Errors><RequestID>")
	_ = xml.EscapeText(&b, []byte(reqID))
	b.WriteString("</RequestID></Response>")
	rw.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	rw.Header().Set("x-amzn-RequestId", reqID)
	rw.WriteHeader(err.Status())
	_, _ = rw.Write(b.Bytes())
}
