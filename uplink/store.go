package uplink

import "github.com/eclipse/paho.mqtt.golang/packets"

// noStore is paho's message store, empty: with CleanSession and a fresh
// client per connection nothing is ever resumed from it — the buffer is the
// store, and everything unacknowledged is sent again from it after a
// reconnect. paho's default MemoryStore would keep a copy of every
// in-flight message under a formatted key for nothing.
type noStore struct{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}
