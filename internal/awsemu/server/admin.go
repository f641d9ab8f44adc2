package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
)

// adminPrefix is where the emulator's own endpoints live.
const adminPrefix = "/_emulator/"

// serveAdmin answers /_emulator/state, /_emulator/calls and /_emulator/faults.
//
//	GET    /_emulator/state   the world snapshot (World.State)
//	GET    /_emulator/calls   calls and errors per action (World.Calls)
//	DELETE /_emulator/calls   reset the recorder
//	GET    /_emulator/faults  the fault rules (World.Faults)
//	POST   /_emulator/faults  add a rule given as JSON (World.AddFault)
//	DELETE /_emulator/faults  clear every rule
func (s *Server) serveAdmin(rw http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case adminPrefix + "state":
		if r.Method != http.MethodGet {
			writeAdminError(rw, http.StatusMethodNotAllowed, "use GET")
			return
		}
		s.adminGet(rw, "State")
	case adminPrefix + "calls":
		switch r.Method {
		case http.MethodGet:
			s.adminGet(rw, "Calls")
		case http.MethodDelete:
			s.world.ResetCalls()
			rw.WriteHeader(http.StatusNoContent)
		default:
			writeAdminError(rw, http.StatusMethodNotAllowed, "use GET or DELETE")
		}
	case adminPrefix + "faults":
		switch r.Method {
		case http.MethodGet:
			s.adminGet(rw, "Faults")
		case http.MethodPost:
			s.adminAddFault(rw, r)
		case http.MethodDelete:
			s.world.ClearFaults()
			rw.WriteHeader(http.StatusNoContent)
		default:
			writeAdminError(rw, http.StatusMethodNotAllowed, "use GET, POST or DELETE")
		}
	default:
		writeAdminError(rw, http.StatusNotFound, "unknown admin endpoint "+r.URL.Path+
			" (known: /_emulator/state, /_emulator/calls, /_emulator/faults)")
	}
}

// adminGet answers the JSON of the world's no-argument method name.
func (s *Server) adminGet(rw http.ResponseWriter, name string) {
	fn := s.wv.MethodByName(name)
	if !fn.IsValid() || fn.Type().NumIn() != 0 || fn.Type().NumOut() != 1 {
		writeAdminError(rw, http.StatusNotImplemented, "the world has no "+name+" method")
		return
	}
	writeAdminJSON(rw, http.StatusOK, fn.Call(nil)[0].Interface())
}

// adminAddFault decodes the request body into AddFault's rule type and adds it.
func (s *Server) adminAddFault(rw http.ResponseWriter, r *http.Request) {
	fn := s.wv.MethodByName("AddFault")
	if !fn.IsValid() || fn.Type().NumIn() != 1 || fn.Type().NumOut() != 1 || fn.Type().Out(0) != errType {
		writeAdminError(rw, http.StatusNotImplemented, "the world has no AddFault method")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeAdminError(rw, http.StatusBadRequest, "read the fault rule: "+err.Error())
		return
	}
	rule := reflect.New(fn.Type().In(0))
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(rule.Interface()); err != nil {
		writeAdminError(rw, http.StatusBadRequest, fmt.Sprintf("the fault rule is not valid JSON of %s: %v", rule.Elem().Type(), err))
		return
	}
	if errv := fn.Call([]reflect.Value{rule.Elem()})[0]; !errv.IsNil() {
		writeAdminError(rw, http.StatusBadRequest, errv.Interface().(error).Error())
		return
	}
	writeAdminJSON(rw, http.StatusCreated, rule.Interface())
}

func writeAdminJSON(rw http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeAdminError(rw, http.StatusInternalServerError, "encode: "+err.Error())
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_, _ = rw.Write(append(b, '\n'))
}

func writeAdminError(rw http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_, _ = rw.Write(append(b, '\n'))
}
