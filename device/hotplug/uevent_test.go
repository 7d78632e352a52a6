package hotplug

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

// uevent builds a datagram as the kernel sends it.
func uevent(header string, env ...string) []byte {
	return []byte(header + "\x00" + strings.Join(env, "\x00") + "\x00")
}

var (
	usbAdd = uevent("add@/devices/pci0000:00/0000:00:14.0/usb1/1-1",
		"ACTION=add", "DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-1", "SUBSYSTEM=usb",
		"MAJOR=189", "MINOR=4", "DEVNAME=bus/usb/001/005", "DEVTYPE=usb_device",
		"PRODUCT=c2e/b61/100", "TYPE=0/0/0", "BUSNUM=001", "DEVNUM=005", "SEQNUM=4711")
	usbBind = uevent("bind@/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0",
		"ACTION=bind", "DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0", "SUBSYSTEM=usb",
		"DEVTYPE=usb_interface", "PRODUCT=c2e/b61/100", "INTERFACE=3/1/1", "MODALIAS=usb:v0C2Ep0B61d0100dc00dsc00dp00ic03isc01ip01in00",
		"DRIVER=usbhid", "SEQNUM=4716")
	ttyAdd = uevent("add@/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/tty/ttyACM0",
		"ACTION=add", "DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/tty/ttyACM0", "SUBSYSTEM=tty",
		"MAJOR=166", "MINOR=0", "DEVNAME=ttyACM0", "SEQNUM=4720")
	ttyRemove = uevent("remove@/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/tty/ttyACM0",
		"ACTION=remove", "DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/tty/ttyACM0", "SUBSYSTEM=tty",
		"MAJOR=166", "MINOR=0", "DEVNAME=ttyACM0", "SEQNUM=4731")
	hidrawAdd = uevent("add@/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/0003:0C2E:0B61.0007/hidraw/hidraw2",
		"ACTION=add", "DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/0003:0C2E:0B61.0007/hidraw/hidraw2",
		"SUBSYSTEM=hidraw", "MAJOR=241", "MINOR=2", "DEVNAME=hidraw2", "SEQNUM=4714")
	hidrawRemove = uevent("remove@/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/0003:0C2E:0B61.0007/hidraw/hidraw2",
		"ACTION=remove", "DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/0003:0C2E:0B61.0007/hidraw/hidraw2",
		"SUBSYSTEM=hidraw", "MAJOR=241", "MINOR=2", "DEVNAME=hidraw2", "SEQNUM=4740")
	usbmiscAdd = uevent("add@/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/usbmisc/hiddev0",
		"ACTION=add", "DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/usbmisc/hiddev0",
		"SUBSYSTEM=usbmisc", "MAJOR=180", "MINOR=96", "DEVNAME=usb/hiddev0", "SEQNUM=4750")
	netAdd = uevent("add@/devices/virtual/net/veth0",
		"ACTION=add", "DEVPATH=/devices/virtual/net/veth0", "SUBSYSTEM=net", "INTERFACE=veth0", "IFINDEX=7", "SEQNUM=4760")
	libudev = append([]byte("libudev\x00\xfe\xed\xca\xfe"), uevent("", "ACTION=add", "SUBSYSTEM=tty")...)
)

func TestParseUevent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       []byte
		want     Event
		err      bool
		relevant bool
	}{
		{name: "usb device add", in: usbAdd, relevant: true, want: Event{
			Action: "add", DevPath: "/devices/pci0000:00/0000:00:14.0/usb1/1-1",
			Subsystem: "usb", DevName: "bus/usb/001/005",
		}},
		{name: "usb interface bind", in: usbBind, relevant: true, want: Event{
			Action: "bind", DevPath: "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0", Subsystem: "usb",
		}},
		{name: "tty add", in: ttyAdd, relevant: true, want: Event{
			Action: "add", DevPath: "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/tty/ttyACM0",
			Subsystem: "tty", DevName: "ttyACM0",
		}},
		{name: "tty remove", in: ttyRemove, want: Event{
			Action: "remove", DevPath: "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/tty/ttyACM0",
			Subsystem: "tty", DevName: "ttyACM0",
		}},
		{name: "hidraw add", in: hidrawAdd, relevant: true, want: Event{
			Action: "add", DevPath: "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/0003:0C2E:0B61.0007/hidraw/hidraw2",
			Subsystem: "hidraw", DevName: "hidraw2",
		}},
		{name: "hidraw remove", in: hidrawRemove, want: Event{
			Action: "remove", DevPath: "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/0003:0C2E:0B61.0007/hidraw/hidraw2",
			Subsystem: "hidraw", DevName: "hidraw2",
		}},
		{name: "usbmisc add", in: usbmiscAdd, relevant: true, want: Event{
			Action: "add", DevPath: "/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/usbmisc/hiddev0",
			Subsystem: "usbmisc", DevName: "usb/hiddev0",
		}},
		{name: "other subsystem", in: netAdd, want: Event{
			Action: "add", DevPath: "/devices/virtual/net/veth0", Subsystem: "net",
		}},
		{name: "header only", in: []byte("change@/devices/virtual/misc/x"), want: Event{
			Action: "change", DevPath: "/devices/virtual/misc/x",
		}},
		{name: "junk fields skipped", in: []byte("add@/d\x00NOEQUALS\x00=v\x00\x00SUBSYSTEM=tty\x00A=b=c"), relevant: true, want: Event{
			Action: "add", DevPath: "/d", Subsystem: "tty",
		}},
		{name: "libudev", in: libudev, err: true},
		{name: "empty", in: nil, err: true},
		{name: "no at", in: []byte("add/devices/x\x00SUBSYSTEM=tty\x00"), err: true},
		{name: "no action", in: []byte("@/devices/x\x00"), err: true},
		{name: "no devpath", in: []byte("add@\x00"), err: true},
		{name: "at only in env", in: []byte("\x00ACTION=add@x\x00"), err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseUevent(tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("ParseUevent = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseUevent: %v", err)
			}
			if got.Action != tc.want.Action || got.DevPath != tc.want.DevPath ||
				got.Subsystem != tc.want.Subsystem || got.DevName != tc.want.DevName {
				t.Errorf("ParseUevent = %q %q %q %q, want %q %q %q %q",
					got.Action, got.DevPath, got.Subsystem, got.DevName,
					tc.want.Action, tc.want.DevPath, tc.want.Subsystem, tc.want.DevName)
			}
			if got.Env["SUBSYSTEM"] != got.Subsystem || got.Env["DEVNAME"] != got.DevName {
				t.Errorf("Env %v disagrees with Subsystem/DevName", got.Env)
			}
			if r := relevant(got); r != tc.relevant {
				t.Errorf("relevant = %v, want %v", r, tc.relevant)
			}
		})
	}
}

func TestParseUeventEnv(t *testing.T) {
	got, err := ParseUevent(ttyAdd)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ACTION": "add", "DEVPATH": "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/tty/ttyACM0",
		"SUBSYSTEM": "tty", "MAJOR": "166", "MINOR": "0", "DEVNAME": "ttyACM0", "SEQNUM": "4720",
	}
	if !maps.Equal(got.Env, want) {
		t.Errorf("Env = %v, want %v", got.Env, want)
	}
	if _, err := ParseUevent(libudev); !errors.Is(err, errLibudev) {
		t.Errorf("libudev datagram: err = %v, want errLibudev", err)
	}
}

func FuzzParseUevent(f *testing.F) {
	for _, seed := range [][]byte{usbAdd, usbBind, ttyAdd, ttyRemove, hidrawAdd, hidrawRemove, usbmiscAdd, netAdd, libudev, nil, []byte("add@\x00")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseUevent(b)
		if err != nil {
			return
		}
		if ev.Action == "" || ev.DevPath == "" {
			t.Fatalf("accepted %q with action %q devpath %q", b, ev.Action, ev.DevPath)
		}
		if ev.Env == nil {
			t.Fatal("nil Env")
		}
		if ev.Env["SUBSYSTEM"] != ev.Subsystem || ev.Env["DEVNAME"] != ev.DevName {
			t.Fatalf("Env %v disagrees with Subsystem %q DevName %q", ev.Env, ev.Subsystem, ev.DevName)
		}
	})
}
