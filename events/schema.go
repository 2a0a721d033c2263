package events

import (
	"encoding/json"
	"fmt"

	"github.com/invopop/jsonschema"
)

// SchemaBaseURL is the $id prefix of the generated schemas.
const SchemaBaseURL = "https://tgflow.org/schemas/"

// Schema generates the JSON Schema of one event type's payload from its Go struct.
func Schema(s Spec) ([]byte, error) {
	r := &jsonschema.Reflector{
		DoNotReference: true,
		ExpandedStruct: true,
		// Readers ignore unknown fields: adding an optional field is a compatible change.
		AllowAdditionalProperties: true,
	}
	sc := r.ReflectFromType(s.GoType())
	sc.ID = jsonschema.ID(SchemaBaseURL + string(s.Type) + ".json")
	sc.Title = string(s.Type)
	sc.Description = fmt.Sprintf("%s Subject %s.<token>; produced by %s.", s.Doc, s.Subject, s.Producer)
	b, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// SchemaFile is the file name of a type's schema under events/schemas/.
func SchemaFile(t Type) string { return string(t) + ".json" }
