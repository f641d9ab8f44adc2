package api

import (
	"bytes"
	"encoding/json"
	"sync"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
)

// appJSON caches the JSON encoding of applications by uid. Applications are
// immutable (SPEC §2), so an encoding never goes stale; ApplicationService/List
// answers then cost one encoding per application ever, not per request.
var appJSON = struct {
	sync.RWMutex
	m map[string][]byte
}{m: map[string][]byte{}}

const maxAppJSON = 50000

func encodeApplication(a *pb.Application) ([]byte, error) {
	appJSON.RLock()
	b, ok := appJSON.m[a.Uid]
	appJSON.RUnlock()
	if ok {
		return b, nil
	}
	b, err := jsonMarshal.Marshal(a)
	if err != nil {
		return nil, err
	}
	if a.Uid != "" {
		appJSON.Lock()
		if len(appJSON.m) >= maxAppJSON {
			clear(appJSON.m)
		}
		appJSON.m[a.Uid] = b
		appJSON.Unlock()
	}
	return b, nil
}

// marshalApplicationList writes the List answer with the cached encodings;
// the result is the same JSON the protobuf mapping gives.
func marshalApplicationList(r *pb.ApplicationServiceListResponse) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"status":`)
	if r.Status {
		buf.WriteString("true")
	} else {
		buf.WriteString("false")
	}
	buf.WriteString(`,"message":`)
	msg, err := json.Marshal(r.Message)
	if err != nil {
		return nil, err
	}
	buf.Write(msg)
	buf.WriteString(`,"data":[`)
	for i, a := range r.Data {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := encodeApplication(a)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	buf.WriteString("]}")
	return buf.Bytes(), nil
}
