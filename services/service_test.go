package services_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tgflow/tgflow/services"
)

func TestNeedsOperator(t *testing.T) {
	a := services.NeedsOperator("a: log in again")
	b := services.NeedsOperator("b: key revoked")
	if !errors.Is(a, services.ErrNeedsOperator) || !errors.Is(fmt.Errorf("run: %w", a), services.ErrNeedsOperator) {
		t.Fatal("a NeedsOperator sentinel does not match ErrNeedsOperator")
	}
	if errors.Is(a, b) || errors.Is(b, a) {
		t.Fatal("two NeedsOperator sentinels match each other")
	}
	if a.Error() != "a: log in again" {
		t.Fatalf("Error() = %q, want the message alone", a.Error())
	}
	if errors.Is(errors.New("other"), services.ErrNeedsOperator) {
		t.Fatal("a plain error matches ErrNeedsOperator")
	}
}
