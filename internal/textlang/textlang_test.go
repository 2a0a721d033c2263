package textlang_test

import (
	"testing"

	"github.com/tgflow/tgflow/internal/textlang"
)

func TestOf(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"russian", "Вышел релиз Go", "ru"},
		{"english", "Go release is out", "en"},
		{"too few letters", "Go 1", ""},
		{"empty", "", ""},
		{"exactly 30 % Cyrillic", "абвgggggg", "ru"}, // 3 of 9 letters... 3*10 >= 9*3
		{"under 30 % Cyrillic", "абggggggg", "en"},
		{"digits and emoji only", "2026 👍👍👍", ""},
		{"ё and Ё are Cyrillic", "ёЁж", "ru"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := textlang.Of(tt.text); got != tt.want {
				t.Errorf("Of(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}
