package worker

import "testing"

// A projector notices deliveries it never received: its batches' consumer sequences skip
// one after the last batch, or have a hole.
func TestProjectorNoticesMissingDeliveries(t *testing.T) {
	tests := []struct {
		name       string
		last       uint64
		deliveries []uint64
		want       bool
	}{
		{"first batch after a start", 0, []uint64{7, 9}, false},
		{"next in line", 10, []uint64{11, 12, 13}, false},
		{"arrived out of order, none missing", 10, []uint64{13, 11, 12}, false},
		{"skips one after the last batch", 10, []uint64{12, 13}, true},
		{"a hole inside the batch", 10, []uint64{11, 13}, true},
		{"empty", 10, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Projector{lastDelivery: tt.last}
			if got := p.missing(tt.deliveries); got != tt.want {
				t.Errorf("missing(%v) after %d = %v, want %v", tt.deliveries, tt.last, got, tt.want)
			}
		})
	}
}
