//go:build linux

package sandbox_test

import (
	"context"
	"encoding/json"
	"expvar"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockade/stockade/internal/testutil"
	"github.com/stockade/stockade/sandbox"
)

var runs int

// TestSandboxVars: the example's Observer counts real starts, failed
// starts and ends in expvar.
func TestSandboxVars(t *testing.T) {
	testutil.RequireUserNamespaces(t)
	runs++ // expvar names are for the life of the process
	name := fmt.Sprintf("sandboxes-test-%d", runs)
	vars := newSandboxVars(name)
	ctx := context.Background()
	for _, args := range [][]string{{"true"}, {"false"}, {"no-such-command"}} {
		sandbox.New(sandbox.Config{Args: args, Observer: vars}).Run(ctx)
	}
	assert.Equal(t, int64(2), vars.starts.Get("total").(*expvar.Int).Value())
	assert.Equal(t, int64(1), vars.failures.Get("exec").(*expvar.Int).Value())
	assert.Equal(t, int64(2), vars.ends.Get("exited").(*expvar.Int).Value())
	var inBuckets int64
	vars.latency.Do(func(kv expvar.KeyValue) {
		if strings.HasPrefix(kv.Key, "le ") {
			inBuckets += kv.Value.(*expvar.Int).Value()
		}
	})
	assert.Equal(t, int64(2), inBuckets)
	assert.Positive(t, vars.latency.Get("sumSeconds").(*expvar.Float).Value())
	var decoded map[string]any
	require.NoError(t, json.Unmarshal([]byte(expvar.Get(name).String()), &decoded))
	assert.Contains(t, decoded, "startLatency")
}
