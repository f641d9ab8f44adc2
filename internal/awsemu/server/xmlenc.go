package server

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// xmlNamer returns the element name of field f of struct type t and the
// member element of a list ("" = the protocol default).
type xmlNamer func(t reflect.Type, f reflect.StructField) (elem, item string)

// ec2XMLName names fields as the EC2 SDK deserializers expect (generated
// table), falling back to the lowerCamel Go field name.
func ec2XMLName(t reflect.Type, f reflect.StructField) (string, string) {
	if n, ok := ec2XMLNames[t.String()][f.Name]; ok {
		return n.Elem, n.Item
	}
	return lowerFirst(f.Name), ""
}

// queryXMLName names fields as the AWS Query protocol (STS) does: the member
// name itself, lists of <member>.
func queryXMLName(_ reflect.Type, f reflect.StructField) (string, string) {
	return f.Name, "member"
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

// xmlEncoder writes SDK output structs as protocol XML.
type xmlEncoder struct {
	buf   *bytes.Buffer
	name  xmlNamer
	plans *sync.Map // reflect.Type -> []xmlField, per namer
	item  string    // default list member element
}

// xmlField is the precomputed encoding of one struct field.
type xmlField struct {
	index      int
	elem, item string
}

var (
	ec2Plans   sync.Map
	queryPlans sync.Map
)

// plan returns the encodable fields of struct type t, computed once.
func (e *xmlEncoder) plan(t reflect.Type) []xmlField {
	if p, ok := e.plans.Load(t); ok {
		return p.([]xmlField)
	}
	var p []xmlField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Name == "ResultMetadata" {
			continue
		}
		elem, item := e.name(t, f)
		p = append(p, xmlField{index: i, elem: elem, item: item})
	}
	e.plans.Store(t, p)
	return p
}

// isoTime is the UTC ISO-8601 form the SDK's ParseDateTime reads.
const isoTime = "2006-01-02T15:04:05.000Z"

func (e *xmlEncoder) text(s string) {
	// xml.EscapeText only fails when the writer fails; bytes.Buffer does not.
	_ = xml.EscapeText(e.buf, []byte(s))
}

func (e *xmlEncoder) open(name string) {
	e.buf.WriteByte('<')
	e.buf.WriteString(name)
	e.buf.WriteByte('>')
}
func (e *xmlEncoder) close(name string) {
	e.buf.WriteString("</")
	e.buf.WriteString(name)
	e.buf.WriteByte('>')
}

// fields writes the members of struct v.
func (e *xmlEncoder) fields(v reflect.Value) {
	for _, f := range e.plan(v.Type()) {
		e.value(v.Field(f.index), f.elem, f.item)
	}
}

// value writes <elem>v</elem>, or nothing when v is unset.
func (e *xmlEncoder) value(v reflect.Value, elem, item string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return
		}
		if v.Kind() == reflect.Interface {
			return // document and union members are not served
		}
		e.value(v.Elem(), elem, item)
		return
	case reflect.String:
		if v.Len() == 0 && v.Type().PkgPath() != "" {
			return // unset enum
		}
		e.open(elem)
		e.text(v.String())
		e.close(elem)
		return
	case reflect.Bool:
		e.open(elem)
		e.buf.WriteString(strconv.FormatBool(v.Bool()))
		e.close(elem)
		return
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.open(elem)
		e.buf.WriteString(strconv.FormatInt(v.Int(), 10))
		e.close(elem)
		return
	case reflect.Float32, reflect.Float64:
		e.open(elem)
		e.buf.WriteString(strconv.FormatFloat(v.Float(), 'f', -1, v.Type().Bits()))
		e.close(elem)
		return
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			e.open(elem)
			e.buf.WriteString(base64.StdEncoding.EncodeToString(v.Bytes()))
			e.close(elem)
			return
		}
		if item == "" {
			item = e.item
		}
		e.open(elem)
		for i := 0; i < v.Len(); i++ {
			e.value(v.Index(i), item, "")
		}
		e.close(elem)
		return
	case reflect.Map:
		if v.IsNil() {
			return
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		e.open(elem)
		for _, k := range keys {
			e.open(e.item)
			e.value(k, "key", "")
			e.value(v.MapIndex(k), "value", "")
			e.close(e.item)
		}
		e.close(elem)
		return
	case reflect.Struct:
		if v.Type() == timeType {
			tm := v.Interface().(time.Time)
			if tm.IsZero() {
				return
			}
			e.open(elem)
			e.buf.WriteString(tm.UTC().Format(isoTime))
			e.close(elem)
			return
		}
		e.open(elem)
		e.fields(v)
		e.close(elem)
	}
}

// ec2Namespace is the XML namespace of EC2 API version 2016-11-15.
const ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// encodeEC2 renders out (a pointer to an SDK output struct) as the EC2 Query
// response of action.
func encodeEC2(action, reqID string, out reflect.Value) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<" + action + "Response xmlns=\"" + ec2Namespace + "\">")
	e := &xmlEncoder{buf: &b, name: ec2XMLName, plans: &ec2Plans, item: "item"}
	e.open("requestId")
	e.text(reqID)
	e.close("requestId")
	if out.IsValid() && !out.IsNil() {
		e.fields(out.Elem())
	}
	b.WriteString("</" + action + "Response>")
	return b.Bytes()
}

// sanitizeElem keeps an element name well formed whatever the input.
func sanitizeElem(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return -1
	}, s)
}
