//go:build linux

package sandbox

// rollback is the undo stack of a start: each step that acquires something
// on the host (the network, the control group, the control socket, pipes,
// the init or pid 1 and its pidfd) pushes the step that gives it back. A
// start that fails unwinds the stack, last acquired first, so that nothing
// is left behind; a start that succeeds releases it, and the sandbox owns
// what was acquired from then on (its end gives it back).
//
// The zero rollback is an empty stack. It is used by one goroutine.
type rollback struct {
	undo []func()
}

// push registers f as the undo of the step just done.
func (r *rollback) push(f func()) { r.undo = append(r.undo, f) }

// unwind runs the undo steps in reverse order and empties the stack. After
// release it does nothing, so a start may defer it.
func (r *rollback) unwind() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		f := r.undo[i]
		r.undo[i] = nil
		r.undo = r.undo[:i]
		f()
	}
}

// release empties the stack without running it: what was acquired now
// belongs to the sandbox.
func (r *rollback) release() { r.undo = nil }

// faultHook, when set (by tests), is called by Start before each setup
// step with the step's name; an error it returns fails the step as if the
// step itself had failed, so that tests can check that a failure at any
// step leaves nothing behind.
var faultHook func(step string) error

// fault returns the error faultHook injects at step, or nil.
func fault(step string) error {
	if faultHook == nil {
		return nil
	}
	if err := faultHook(step); err != nil {
		return setupErr(step, "", err)
	}
	return nil
}
