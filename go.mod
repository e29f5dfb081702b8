module github.com/stockade/stockade

go 1.26.0

require (
	github.com/moby/sys/mountinfo v0.7.3
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/sys v0.50.0
)

require github.com/vishvananda/netns v0.0.5 // indirect
