package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/aquarium-fish/aquarium-fish/internal/awsemu"
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
		writeAdminJSON(rw, http.StatusOK, s.world.State())
	case adminPrefix + "calls":
		switch r.Method {
		case http.MethodGet:
			writeAdminJSON(rw, http.StatusOK, s.world.Calls())
		case http.MethodDelete:
			s.world.ResetCalls()
			rw.WriteHeader(http.StatusNoContent)
		default:
			writeAdminError(rw, http.StatusMethodNotAllowed, "use GET or DELETE")
		}
	case adminPrefix + "faults":
		switch r.Method {
		case http.MethodGet:
			writeAdminJSON(rw, http.StatusOK, s.world.Faults())
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

// adminAddFault decodes a FaultRule from the request body and adds it.
func (s *Server) adminAddFault(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeAdminError(rw, http.StatusBadRequest, "read the fault rule: "+err.Error())
		return
	}
	var rule awsemu.FaultRule
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rule); err != nil {
		writeAdminError(rw, http.StatusBadRequest, "the fault rule is not valid JSON: "+err.Error())
		return
	}
	if err := s.world.AddFault(rule); err != nil {
		writeAdminError(rw, http.StatusBadRequest, err.Error())
		return
	}
	writeAdminJSON(rw, http.StatusCreated, rule)
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
