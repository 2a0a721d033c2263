package export_test

import "github.com/tgflow/tgflow/services/ingest/export/exporttest"

func genExport(n int) []byte { return exporttest.Generate(n) }
