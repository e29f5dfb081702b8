//go:build !amd64

package main

func int80(nr uintptr) uintptr { panic("int 0x80 exists on amd64 only") }

const haveInt80 = false
