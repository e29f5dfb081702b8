//go:build linux

package proto

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestPack sends messages around MaxPacket and far beyond what a socket's
// buffer takes in one packet, with descriptors, and reads them back.
func TestPack(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	for _, n := range []int{1 << 10, MaxPacket, MaxPacket + 1, 4 << 20} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		pkt, mfd, err := Pack(msg)
		require.NoError(t, err)
		if n <= MaxPacket {
			assert.Equal(t, -1, mfd)
		} else {
			assert.Len(t, pkt, 1)
		}
		r, w, err := pipe()
		require.NoError(t, err)
		files := []int{r}
		if mfd >= 0 {
			files = []int{mfd, r}
		}
		require.NoError(t, unix.Sendmsg(fds[0], pkt, unix.UnixRights(files...), nil, 0))
		if mfd >= 0 {
			unix.Close(mfd)
		}
		unix.Close(r)
		got, gotFiles, err := RecvFiles(fds[1])
		require.NoError(t, err)
		assert.True(t, bytes.Equal(msg, got), "a message of %d bytes came back as %d", n, len(got))
		require.Len(t, gotFiles, 1, "the memory file is not the caller's")
		// The pipe came through: a write on w reaches it.
		_, err = unix.Write(w, []byte("x"))
		require.NoError(t, err)
		buf := make([]byte, 1)
		_, err = unix.Read(gotFiles[0], buf)
		require.NoError(t, err)
		unix.Close(gotFiles[0])
		unix.Close(w)
	}
}

func TestUnpackMalformed(t *testing.T) {
	_, _, err := unpack([]byte{inFile}, nil)
	assert.ErrorIs(t, err, ErrMalformed)
	// A memory file too short to need packing is not a packed message.
	fd, err := unix.MemfdCreate("short", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	_, err = unix.Write(fd, []byte("short"))
	require.NoError(t, err)
	_, _, err = unpack([]byte{inFile}, []int{fd})
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	assert.ErrorIs(t, err, unix.EBADF, "unpack closes the memory file")
}

func pipe() (r, w int, err error) {
	var p [2]int
	err = unix.Pipe2(p[:], unix.O_CLOEXEC)
	return p[0], p[1], err
}
