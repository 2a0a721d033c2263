package export

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// Every message the fast reader accepts is read again by the exact one in tests, and the
// two must agree.
func init() { SetVerifyFast(true) }

// SetVerifyFast turns the cross-check on or off (benchmarks turn it off).
func SetVerifyFast(on bool) {
	if !on {
		verifyFast = nil
		return
	}
	verifyFast = func(raw json.RawMessage, fast *message) {
		slow, ferr := parseMessage(raw, &wireMessage{})
		if ferr != nil {
			panic(fmt.Sprintf("fast reader accepted a message the exact one rejects (%s): %s", ferr.reason, raw))
		}
		if !reflect.DeepEqual(fast, slow) {
			panic(fmt.Sprintf("fast and exact readers disagree on %s:\nfast  %+v\nexact %+v", raw, *fast, *slow))
		}
	}
}
