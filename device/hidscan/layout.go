package hidscan

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// Keyboard usages (HID Usage Tables, page 0x07 "Keyboard/Keypad") that the
// decoder treats specially. Character keys are looked up in a layout.
const (
	keyErrorRollOver = 0x01 // 0x01-0x03: the keyboard's "phantom" error states
	keyErrorUndef    = 0x03
	keyEnter         = 0x28
	keyEscape        = 0x29
	keyBackspace     = 0x2A
	keyTab           = 0x2B
	keySpace         = 0x2C
	keyCapsLock      = 0x39
	keyScrollLock    = 0x47
	keyDelete        = 0x4C
	keyNumLock       = 0x53
	keyKPSlash       = 0x54
	keyKPEnter       = 0x58
	keyKP1           = 0x59
	keyKP0           = 0x62
	keyKPDecimal     = 0x63
	keyKPEqual       = 0x67
	keyLeftCtrl      = 0xE0 // 0xE0-0xE7: modifiers, when a device also lists them as keys
	keyRightGUI      = 0xE7
)

// Modifier bits of byte 0 of a boot keyboard report (HID 1.11, appendix B.1).
const (
	modLCtrl  = 0x01
	modLShift = 0x02
	modLAlt   = 0x04
	modLGUI   = 0x08
	modRCtrl  = 0x10
	modRShift = 0x20
	modRAlt   = 0x40
	modRGUI   = 0x80

	modCtrl  = modLCtrl | modRCtrl
	modShift = modLShift | modRShift
	modGUI   = modLGUI | modRGUI
)

// numUsages covers every key a layout maps (the last is 0x64, the ISO key
// left of Z).
const numUsages = 0x68

// Levels of a key: what it types alone, with Shift, with AltGr, and with
// Shift+AltGr.
const (
	lvlBase = iota
	lvlShift
	lvlAltGr
	lvlShiftAltGr
)

// keyDef is what one key types in one layout. A zero rune means the key
// types nothing at that level.
type keyDef struct {
	r [4]rune
	// dead has bit i set when level i is a dead key: it types nothing by
	// itself but accents the next character.
	dead uint8
	// caps is set for letters: Caps Lock inverts Shift on them (the
	// Windows rule, which scanners are configured against) and on nothing
	// else.
	caps bool
}

// layout maps keyboard usages to characters the way the named Windows
// keyboard layout does, since scanners are set up against those.
type layout struct {
	name string
	// altGr tells whether Right Alt is AltGr (a third level) rather than
	// a second Alt key, and so whether Ctrl+Left Alt also means AltGr.
	altGr     bool
	keys      [numUsages]keyDef
	kpDecimal rune
}

// set defines usage u's levels from a string of up to four runes; a space
// in positions 1-3 means "types nothing" (position 0 of the space bar is
// set elsewhere).
func (l *layout) set(u byte, levels string) {
	d := &l.keys[u]
	for i, r := range []rune(levels) {
		if i > 0 && r == ' ' {
			continue
		}
		d.r[i] = r
	}
}

func (l *layout) letter(u byte, lower rune) {
	d := &l.keys[u]
	d.r[lvlBase] = lower
	d.r[lvlShift] = []rune(strings.ToUpper(string(lower)))[0]
	d.caps = true
}

func (l *layout) deadAt(u byte, levels ...int) {
	for _, lv := range levels {
		l.keys[u].dead |= 1 << lv
	}
}

func newLayout(name string, altGr bool) *layout {
	l := &layout{name: name, altGr: altGr, kpDecimal: '.'}
	for u := byte(0x04); u <= 0x1D; u++ {
		l.letter(u, rune('a'+u-0x04))
	}
	l.keys[keySpace].r = [4]rune{' ', ' ', ' ', ' '}
	return l
}

// layouts are the supported keyboard layouts, by config name. Each table
// follows the Windows layout of that name (KBDUS, KBDUK, KBDGR, KBDFR).
var layouts = map[string]*layout{
	"us": layoutUS(),
	"uk": layoutUK(),
	"de": layoutDE(),
	"fr": layoutFR(),
}

// Layouts returns the names of the supported keyboard layouts, sorted, for
// config validation and help texts.
func Layouts() []string {
	names := make([]string, 0, len(layouts))
	for n := range layouts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func layoutUS() *layout {
	l := newLayout("us", false)
	for i, p := range []string{"1!", "2@", "3#", "4$", "5%", "6^", "7&", "8*", "9(", "0)"} {
		l.set(byte(0x1E+i), p)
	}
	l.set(0x2D, "-_")
	l.set(0x2E, "=+")
	l.set(0x2F, "[{")
	l.set(0x30, "]}")
	l.set(0x31, `\|`)
	l.set(0x32, `\|`) // the ISO "#~" usage types the same key code on a US layout
	l.set(0x33, ";:")
	l.set(0x34, `'"`)
	l.set(0x35, "`~")
	l.set(0x36, ",<")
	l.set(0x37, ".>")
	l.set(0x38, "/?")
	l.set(0x64, `\|`)
	return l
}

func layoutUK() *layout {
	l := newLayout("uk", true)
	for i, p := range []string{"1!", `2"`, "3£", "4$€", "5%", "6^", "7&", "8*", "9(", "0)"} {
		l.set(byte(0x1E+i), p)
	}
	l.set(0x2D, "-_")
	l.set(0x2E, "=+")
	l.set(0x2F, "[{")
	l.set(0x30, "]}")
	l.set(0x31, "#~") // Windows gives usages 0x31 and 0x32 the same scan code
	l.set(0x32, "#~")
	l.set(0x33, ";:")
	l.set(0x34, "'@")
	l.set(0x35, "`¬¦")
	l.set(0x36, ",<")
	l.set(0x37, ".>")
	l.set(0x38, "/?")
	l.set(0x64, `\|`)
	// UK extended: AltGr+vowel types the acute vowel.
	for u, acc := range map[byte]string{0x04: "áÁ", 0x08: "éÉ", 0x0C: "íÍ", 0x12: "óÓ", 0x18: "úÚ"} {
		r := []rune(acc)
		l.keys[u].r[lvlAltGr], l.keys[u].r[lvlShiftAltGr] = r[0], r[1]
	}
	return l
}

func layoutDE() *layout {
	l := newLayout("de", true)
	l.kpDecimal = ','
	l.letter(0x1C, 'z') // QWERTZ: the key at US "Y" types Z
	l.letter(0x1D, 'y')
	l.keys[0x14].r[lvlAltGr] = '@'
	l.keys[0x08].r[lvlAltGr] = '€'
	l.keys[0x10].r[lvlAltGr] = 'µ'
	for i, p := range []string{"1!", `2"²`, "3§³", "4$", "5%", "6&", "7/{", "8([", "9)]", "0=}"} {
		l.set(byte(0x1E+i), p)
	}
	l.set(0x2D, `ß?\`)
	l.set(0x2E, "´`")
	l.deadAt(0x2E, lvlBase, lvlShift)
	l.set(0x2F, "üÜ")
	l.keys[0x2F].caps = true
	l.set(0x30, "+*~")
	l.set(0x31, "#'")
	l.set(0x32, "#'")
	l.set(0x33, "öÖ")
	l.keys[0x33].caps = true
	l.set(0x34, "äÄ")
	l.keys[0x34].caps = true
	l.set(0x35, "^°")
	l.deadAt(0x35, lvlBase)
	l.set(0x36, ",;")
	l.set(0x37, ".:")
	l.set(0x38, "-_")
	l.set(0x64, "<>|")
	return l
}

func layoutFR() *layout {
	l := newLayout("fr", true)
	// AZERTY letters that differ from QWERTY, by the US key position.
	l.letter(0x04, 'q')
	l.letter(0x14, 'a')
	l.letter(0x1A, 'z')
	l.letter(0x1D, 'w')
	l.letter(0x33, 'm')
	l.keys[0x08].r[lvlAltGr] = '€'
	l.keys[0x10] = keyDef{r: [4]rune{',', '?'}} // US "M" position
	// The digits are the Shift level of the top row.
	for i, p := range []string{"&1", "é2~", `"3#`, "'4{", "(5[", "-6|", "è7`", `_8\`, "ç9^", "à0@"} {
		l.set(byte(0x1E+i), p)
	}
	l.deadAt(0x1F, lvlAltGr) // AltGr+2: dead tilde
	l.deadAt(0x24, lvlAltGr) // AltGr+7: dead grave
	l.set(0x2D, ")°]")
	l.set(0x2E, "=+}")
	l.set(0x2F, "^¨")
	l.deadAt(0x2F, lvlBase, lvlShift)
	l.set(0x30, "$£¤")
	l.set(0x31, "*µ")
	l.set(0x32, "*µ")
	l.set(0x34, "ù%")
	l.set(0x35, "²")
	l.set(0x36, ";.")
	l.set(0x37, ":/")
	l.set(0x38, "!§")
	l.set(0x64, "<>")
	return l
}

// deadCompose holds, for each dead key, the characters it accents and
// their accented forms; any other character follows the dead key's own
// character, as Windows does.
var deadCompose = map[rune][2]string{
	'^': {"aeiouAEIOU", "âêîôûÂÊÎÔÛ"},
	'´': {"aeiouyAEIOUY", "áéíóúýÁÉÍÓÚÝ"},
	'`': {"aeiouAEIOU", "àèìòùÀÈÌÒÙ"},
	'¨': {"aeiouyAEIOU", "äëïöüÿÄËÏÖÜ"},
	'~': {"aonAON", "ãõñÃÕÑ"},
}

// compose returns dead applied to r, if that makes one character. It
// does not allocate: it runs for every accented character of a scan.
func compose(dead, r rune) (rune, bool) {
	c, ok := deadCompose[dead]
	if !ok {
		return 0, false
	}
	i := strings.IndexRune(c[0], r)
	if i < 0 {
		return 0, false
	}
	n := utf8.RuneCountInString(c[0][:i])
	for _, t := range c[1] {
		if n == 0 {
			return t, true
		}
		n--
	}
	return 0, false
}

// ctrlPositional maps the keys that type the ASCII controls NUL and
// 0x1B-0x1F with Ctrl. Windows layouts define these by key position (the
// keys where US has 2 [ \ ] 6 -), not by the character printed on the key,
// and scanners' "Ctrl+ASCII" modes send them that way whatever the layout:
// GS is Ctrl and the second key right of P even on a German keyboard,
// where that key is labelled "+". Windows wants Shift with 2, 6 and -;
// scanners differ, so Shift is ignored here.
var ctrlPositional = map[byte]byte{
	0x1F: 0x00, // Ctrl+@: NUL
	0x2F: 0x1B, // Ctrl+[: ESC
	0x31: 0x1C, // Ctrl+\: FS
	0x32: 0x1C,
	0x64: 0x1C,
	0x30: 0x1D, // Ctrl+]: GS
	0x23: 0x1E, // Ctrl+^: RS
	0x2D: 0x1F, // Ctrl+_: US
}
