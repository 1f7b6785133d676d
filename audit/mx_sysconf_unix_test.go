//go:build !windows

package audit

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSystemDNSServers(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, conf string
		want       []string
		wantErr    string
	}{
		{name: "servers", conf: "search example.test\nnameserver 127.0.0.53\nnameserver ::1\n", want: []string{"127.0.0.53:53", "[::1]:53"}},
		{name: "none", conf: "search example.test\n", wantErr: "--dns-server"},
		{name: "missing file", wantErr: "--dns-server"},
	}
	old := resolvConf
	t.Cleanup(func() { resolvConf = old })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resolvConf = filepath.Join(dir, tt.name)
			if tt.conf != "" {
				if err := os.WriteFile(resolvConf, []byte(tt.conf), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r, err := NewDNSResolver(DNSConfig{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Servers(); !slices.Equal(got, tt.want) {
				t.Errorf("servers = %v, want %v", got, tt.want)
			}
		})
	}
}
