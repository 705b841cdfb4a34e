//! Adaptive context statistics over binary decisions: orders 1 to 6 plus word, column,
//! sparse and record contexts, hashed, learning as the block is coded (the context models
//! of lpaq, evaluated for every node of the byte's bit tree so the mixer can hand the range
//! coder a whole distribution).
//!
//! A byte is 8 bit decisions; the decisions already made form the partial byte `c0`
//! (`1`, then `c0 * 2 + bit`), so the 255 nodes of the tree are `c0 = 1..=255`. For each
//! context the counters of the high nibble's 15 nodes live in one 32-byte slot, and those
//! of the low nibble's 15 nodes in a slot chosen by the context and the high nibble. A
//! prediction reads the high slot and the low slots of the high nibbles the mixer finds
//! plausible; an update touches the 2 slots on the path.
//!
//! Slots carry a 16-bit check of their context; of the slots a context may use (two, one
//! cache line; from format version 13 four, two adjacent lines) a new context takes the
//! one that has learned least. Everything is integer.

mod legacy;

use crate::hint::prefetch;
use crate::logistic::{bump16x4, pace, squash, stretch, Pace, StateMap, CELL_INIT, EVEN_PACE};
use crate::tracked::Tracked;

use super::x86::{Calls, X86};

mod cells;
use crate::snapshot::{Snapshot, Walker};
use cells::Cells;

/// Context kinds this model can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The last `n` bytes (`1..=8`).
    Order(u8),
    /// The current word (letters, case folded) and the word before it.
    Word,
    /// Format version 13 on, a text slot ([`Orders::set_text_slots`]): the current word
    /// with the separator before it (the bytes between the last word and this one), or
    /// between words with the separator so far: `the, cat` and `the cat` part here, and
    /// after `", "` what follows a comma (paq8px's word and gap tokens).
    WordGap,
    /// Format version 13 on, a text slot: the current word and the word two back, skipping
    /// the last (`a big dog`, `a small dog`).
    /// On binary data the bytes 1 and 5 back instead ([`BINARY_SKIP`]).
    WordSkip,
    /// Format version 13 on, a text slot: the current word and the column in fours:
    /// which words start and end lines where prose wraps. Past column [`LONG_LINE`] the
    /// word and the text's nesting instead.
    WordColumn,
    /// The current word alone (lpaq's word context): what follows a word's letters,
    /// whichever word came before.
    Unigram,
    /// Format version 13 on, a text slot: the current word, or between words the last two
    /// bytes, within the lane's current window of [`RECENT_WINDOW`] bytes: what was written
    /// lately, whatever came before. Words and punctuation come in bursts (a name, a
    /// variable, the topic of a post), which a window's fresh counters learn faster than
    /// the settled ones of the whole block (paq8px's word model keys a context on the
    /// position over 1,024 with the word).
    Recent,
    /// The column position in a line and the byte above it: tables, aligned text.
    Column,
    /// Bytes of the history selected by a mask of byte positions (bit `i` = the byte `i + 1`
    /// back), skipping the others: structured binary data (records, fixed-width fields,
    /// machine code operands).
    Sparse(u8),
    /// Fixed-length records (tables, bitmaps, arrays of structures), with the record length
    /// detected from the bytes. Never listed among a model's kinds: a word slot keys on
    /// records instead of words while the data is binary and a length is known.
    Record(RecordKey),
    /// Text structure (format version 13 on): the bracket nesting and whether a string is
    /// open, in markup the open tag or attribute, with the last [`NEST_ORDER`] bytes.
    /// Never listed among a model's kinds: the first sparse slot keys on it while the data
    /// is text, where it would otherwise sit idle.
    Nest,
    /// Text structure (format version 13 on): the current line's indentation and first
    /// byte, with the last [`INDENT_ORDER`] bytes: the second sparse slot on text. Past
    /// column [`LONG_LINE`] the text's nesting in place of the line's.
    Indent,
    /// Machine code (blocks through the x86 filter): where the next byte sits in its
    /// instruction and what decides it ([`X86::context`]), in a jump target's second byte
    /// with the next byte's offset in the block (its bits 8-15); variant 1 adds the last
    /// byte and the offset modulo [`CODE_ALIGN`].
    /// From format version 13, with the field: variant 2 the opcodes of the last four
    /// instructions, variant 3 the instruction's bytes so far, variant 4 in an operand
    /// the operand bytes of the last instruction alike ([`X86::key`]; elsewhere as 3,
    /// with the previous opcode).
    /// Never listed among a model's kinds: the column and unigram slots key on variants 0
    /// and 1, the order-4, order-3 and word slots on 2, 3 and 4
    /// (`docs/tuning.md`, "More contexts for machine code").
    Code(u8),
    /// Tables and lists (format version 13 on): the field of a row of delimited fields
    /// ([`Rows`]) and, for variant 0, the bytes at the same offset in the same field of
    /// the row above and the last two bytes; for variant 1, the field's bytes so far. In
    /// a table's lines (variants 0 and 1) the column and unigram slots key on them where
    /// the last two lines had as many fields, at least [`TABLE_FIELDS`]; elsewhere in a
    /// bracketed list's rows (variant 2, as 0), the column slot.
    Field(u8),
    /// Numbers on long lines (format version 13 on): the place of the next byte in a
    /// number and which number it is ([`Numbers`]), with the last byte. Never listed
    /// among a model's kinds: the column slot keys on it on text past column
    /// [`LONG_LINE`], where the column says nothing (SVG path data, minified code).
    Number,
    /// Numbers aligned place by place (format version 13 on): the next byte's place in its
    /// number, the bytes at that place and the next in the number two before, how the
    /// number so far departs from that one and how that one departed from the number two
    /// before it, and the last letter ([`Numbers::aligned`]). Coordinates and path data
    /// alternate x and y, and a point's x is near the last point's. Never listed among a
    /// model's kinds: the second sparse slot keys on it on text of many digits
    /// ([`NUMERIC`]), where the line's indentation says little.
    Digits,
    /// The bytes that followed the last occurrences of a short context, with the context
    /// (format version 13 on; paq8's indirect contexts): variant 1 the last byte and the
    /// four bytes that followed its last four occurrences, variant 2 the last two bytes
    /// and the byte that followed their last occurrence. Never listed among a model's
    /// kinds: outside machine code, after any byte but a letter, the order-4 slot keys on
    /// variant 1 and the order-2 slot on variant 2 (`docs/tuning.md`, "Where the slots
    /// earn their place").
    Indirect(u8),
    /// The shapes of the last bytes (format version 13 on): each byte's class
    /// ([`shape_class`]: lower or upper case letter, digit, kind of space, a group of
    /// punctuation), runs of one class counted twice at most, the last [`SHAPE_ORDER`].
    /// Code, markup and data repeat the shape of a line or a token with other words and
    /// numbers in it (the word-shape contexts of paq8px's text model; `docs/tuning.md`,
    /// "Shape contexts").
    Shape,
    /// The classes of the last [`BINARY_SHAPE_ORDER`] bytes in binary data's terms
    /// ([`binary_class`]: zero, `0xFF`, control bytes, printable, high bytes; format
    /// version 13 on): where the fields of a record or an instruction sit. Like the sparse
    /// contexts it sits out on text, but for code, markup and data, where its slot keys on
    /// [`Kind::Coarse`] (`docs/tuning.md`, "Shape contexts").
    BinaryShape,
    /// On text, the shapes of the current line so far ([`Kind::Shape`]'s classes since
    /// the last newline, hashed): the kind of line, whatever its words (past column
    /// [`LONG_LINE`] the last 16 classes); on binary data
    /// (variant 1) the position modulo 4 with the binary classes of the last 4 bytes
    /// ([`binary_class`]): fields aligned to their size (format version 13 on;
    /// `docs/tuning.md`, "Shape contexts").
    Line(u8),
    /// Binary data (format version 13 on): the byte the copy experts expect next, with the
    /// last byte and the match's length (to 15); without a match, the last two bytes
    /// (paq8px's match model keys contexts on the expected byte). Never listed among a
    /// model's kinds: on binary data the last text slot keys on it
    /// ([`Orders::set_text_slots`]), the expected byte given by [`Orders::expect`].
    Expected,
    /// On prose (text with fewer than [`PUNCTUATED`] digits and punctuation), in the binary
    /// shape context's slot: the column, the last byte's coarse class ([`coarse_class`])
    /// and the previous line's length in eighths: where prose wraps its lines, which the
    /// column and the byte above it do not say (format version 13 on; `docs/tuning.md`,
    /// "Line wrap and indentation").
    Wrap,
    /// On text with [`PUNCTUATED`] digits and punctuation, in the binary shape context's
    /// slot: the coarse classes of the last 32 bytes ([`coarse_class`]: letter, digit,
    /// space, anything else), the rhythm of words, numbers and punctuation over the last
    /// few words, whatever they are (format version 13 on; `docs/tuning.md`, "Coarse
    /// classes").
    Coarse,
    /// Spreadsheet cells (format version 13 on): in a chain of BIFF records
    /// ([`Cells`]), variant 0 the cell's column with the value above it, 1 the column
    /// alone, 2 the values above and to the left.
    Cell(u8),
}

/// A byte's class in the coarse context (2 bits): letters (and the bytes of UTF-8
/// sequences), digits, spaces, anything else.
fn coarse_class(byte: u8) -> u64 {
    match byte {
        b'a'..=b'z' | b'A'..=b'Z' | 0x80.. => 0,
        b'0'..=b'9' => 1,
        b' ' | b'\t' | b'\n' | b'\r' => 2,
        _ => 3,
    }
}

/// The window of [`Kind::Recent`], as log2 bytes: long enough for a word to come again,
/// short enough to follow a topic (`docs/tuning.md`, "A recent window", has the sizes
/// measured).
const RECENT_WINDOW: u32 = 10;

/// Bytes the binary shape context keeps ([`Kind::BinaryShape`]).
const BINARY_SHAPE_ORDER: u32 = 8;

/// A byte's class in the binary shape context (3 bits).
fn binary_class(byte: u8) -> u64 {
    match byte {
        0 => 0,
        0xFF => 1,
        0x01..=0x0F => 2,
        0x10..=0x1F => 3,
        0x20..=0x7E => 4,
        0x7F..=0xBF => 5,
        _ => 6,
    }
}

/// Classes the shape context keeps ([`Kind::Shape`]).
const SHAPE_ORDER: u32 = 10;

/// A byte's class in the shape context (4 bits): letters by case, digits, each kind of
/// space, and punctuation in groups that play one part (separators, brackets, quotes,
/// comparison, arithmetic, identifier marks).
fn shape_class(byte: u8) -> u64 {
    match byte {
        b'a'..=b'z' => 0,
        b'A'..=b'Z' => 1,
        b'0'..=b'9' => 2,
        b' ' => 3,
        b'\n' | b'\r' => 4,
        b'\t' => 5,
        b'.' | b',' => 6,
        b';' | b':' => 7,
        b'(' | b')' => 8,
        b'[' | b']' | b'{' | b'}' => 9,
        b'"' | b'\'' | b'`' => 10,
        b'=' | b'<' | b'>' => 11,
        b'+' | b'-' | b'*' | b'/' | b'%' => 12,
        b'_' | b'$' | b'#' | b'@' => 13,
        0x21..=0x7E => 14,
        _ => 15,
    }
}

/// What a record context keys on, besides the record length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordKey {
    /// The byte one record back and the byte before this one: above and left, in a bitmap.
    AboveLeft,
    /// The bytes one and two records back: a field's value in the last two records.
    AboveTwice,
    /// The byte one record back and the place in the record (format version 13 on, in
    /// tables, [`RecordLength::tabular`]): what this field held in the last record.
    Field,
    /// Records of [`NUMBER_RECORDS`] bytes read as numbers (format version 13 on, in place
    /// of [`RecordKey::AboveLeft`]): the place in the record, the byte at that place of
    /// the value the last two records extrapolate to, and how far the byte before missed
    /// its own ([`RecordLength::extrapolated`]). Samples of a signal, coordinates and
    /// sensor readings change by similar steps from one record to the next, which a
    /// context of the bytes themselves sees as pairs never seen before.
    Extrapolated,
}

/// The record lengths whose records [`RecordKey::Extrapolated`] reads as numbers: 32-bit
/// and 64-bit values (integers, floats). Records of 2 bytes cost more than they gained,
/// in a font's and a WebAssembly module's tables (`docs/tuning.md`, "Records as
/// numbers").
const NUMBER_RECORDS: [usize; 2] = [4, 8];

/// [`RecordLength::misses`] below which records are read as numbers: fewer than 3.5 of
/// every 4 bytes missed, on average; and where the count starts, every byte missed.
/// Records of 4 bytes in machine code are not a series.
const NUMBERS_ON: i32 = 56 * 8;
const NUMBERS_OFF: i32 = 64 * 8;

/// One 32-byte slot: `[0]` is the check, `[1..16]` the counters of one nibble's nodes.
type Slot = [u16; 16];

/// The two slots a context may use, on one cache line (a `Vec<Slot>` from the allocator
/// starts 16 bytes into a page, which put every pair across two lines).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([Slot; 2]);

/// The context table: slots indexed one by one, stored by cache line, the lines written
/// marked ([`Orders::restore_from`]).
#[derive(Clone)]
struct SlotTable(Tracked<Line>);

impl SlotTable {
    fn new(bits: u32) -> Self {
        SlotTable(Tracked::new(vec![Line([[0; 16]; 2]); 1 << (bits - 1)]))
    }

    fn clear(&mut self) {
        self.0.all_mut().fill(Line([[0; 16]; 2]));
    }

    fn lines(&self) -> &[Line] {
        self.0.as_slice()
    }

    #[inline(always)]
    fn prefetch_mark(&self, line: usize) {
        self.0.prefetch_mark(line);
    }
}

impl std::ops::Index<usize> for SlotTable {
    type Output = Slot;
    #[inline(always)]
    fn index(&self, i: usize) -> &Slot {
        &self.0[i >> 1].0[i & 1]
    }
}

impl std::ops::IndexMut<usize> for SlotTable {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut Slot {
        &mut self.0[i >> 1].0[i & 1]
    }
}

/// `Orders::binary` above which sparse contexts run: a steady 1/8 of non-text bytes gives
/// `2^16 / 8`.
const BINARY_ON: u32 = 1 << 13;

/// Bytes of history the structure contexts add to the structure itself: the nesting alone
/// (the order contexts already see the last bytes), the line with the last two bytes
/// (`docs/tuning.md`, "Structure contexts").
const NEST_ORDER: u32 = 0;
const INDENT_ORDER: u32 = 2;

/// Counter count limit: the most the 4-bit count holds, so a counter ends as a moving
/// average over ~16 bits (10 measured 0.06% larger on the bench corpus); `adapt` makes up
/// for what a moving average misses.
const LIMIT: u16 = 15;

/// Per-context lookup results of the current byte.
#[derive(Clone, Copy)]
struct Found {
    /// Context hash at this byte.
    hash: u64,
    /// Slot of the high nibble, if present.
    high: Option<u32>,
    /// Slot of the low nibble for each high nibble, if present.
    low: [Option<u32>; 16],
    /// The context sits this byte out (a sparse context on text): inputs 0, no update.
    idle: bool,
}

/// What the loop over contexts of [`Orders::node_inputs`] reads and writes, context by
/// context, kept apart from [`Found`] so that loop walks three short arrays.
#[derive(Clone, Copy)]
struct AtNode {
    /// The slot of the nibble being coded ([`Orders::lookup_high`],
    /// [`Orders::lookup_low`]), [`NO_SLOT`] if none.
    slot: [u32; MAX_KINDS],
    /// Format version 13 on ([`AdaptShape`]), as the byte's nodes are predicted in
    /// order: which of them were on the context's last path (bit `depth`)...
    on_path: [u8; MAX_KINDS],
    /// ... and the last bit of the latest if it was (its child that bit leads to is on
    /// the path too; 2 if it was not).
    follow: [u8; MAX_KINDS],
    /// The high nibble whose low slots `slot` holds, if it holds low slots.
    nibble: Option<usize>,
}

/// [`AtNode::slot`] of a context without a slot for the nibble.
const NO_SLOT: u32 = u32::MAX;

impl AtNode {
    const START: AtNode = AtNode {
        slot: [NO_SLOT; MAX_KINDS],
        on_path: [0; MAX_KINDS],
        follow: [2; MAX_KINDS],
        nibble: None,
    };
}

/// The per-lane state.
#[derive(Clone)]
pub(crate) struct Orders {
    kinds: Vec<Kind>,
    table: SlotTable,
    bits: u32,
    /// The table is in the grown layout ([`Orders::grow`]).
    grows: bool,
    /// True once the table has been written since it was last cleared.
    dirty: bool,
    found: Vec<Found>,
    at_node: AtNode,
    /// What a counter's state predicts, learned per context kind: row `(k, count, stretch
    /// bucket of the counter's probability)`. A counter that has seen one 1 says 0.83; in a
    /// sparse high-order context the next bit is a 1 far more often, in order 1 less. The
    /// mixer gets the learned probability (the indirect modelling of lpaq's state maps,
    /// over the counters this model keeps).
    adapt: StateMap,
    /// How a counter's state picks its cell of `adapt`.
    adapt_shape: AdaptShape,
    /// Each depth's row set in `adapt` ([`ADAPT_DEPTHS`]); a kind has `adapt_depths[7] + 1`.
    adapt_depths: [usize; 8],
    /// Whether the counters reach the gate through `adapt`; without it (format version
    /// 13's `fast`) `adapt` is empty and a counter's input is its stretch alone.
    mapped: bool,
    /// The last 8 bytes, newest in the low byte.
    history: u64,
    /// Bytes since the reset.
    seen: u64,
    /// Hash of the word being read (0 between words) and of the word before it.
    word: u64,
    prev_word: u64,
    /// The word before `prev_word` ([`Kind::WordSkip`]).
    older_word: u64,
    /// The last word followed by `:` or `=` (directly, or after a closing quote): the key
    /// whose value the text is in ([`Kind::WordSkip`] off prose).
    keyword: u64,
    /// Hash of the bytes since the last word ended (0 inside a word), and of those that
    /// came before the current word ([`Kind::WordGap`]).
    separator: u64,
    separator_before: u64,
    /// Recent share of bytes that are not text (decaying count, 1/32 per byte, x 2^16):
    /// sparse contexts only run while it is high, so text does not pay for them.
    binary: u32,
    /// Continuation bytes the current UTF-8 sequence still needs (format version 13 on).
    utf8_due: u8,
    /// The classes of the last bytes, 4 bits each, newest in the low bits
    /// ([`Kind::Shape`]; format version 13 on).
    shape: u64,
    /// The hash of the classes kept since the last newline ([`Kind::Line`] on text;
    /// format version 13 on).
    line_shape: u64,
    /// The binary classes of the last bytes, 3 bits each, newest in the low bits
    /// ([`Kind::BinaryShape`]; format version 13 on).
    binary_shape: u64,
    /// The coarse classes of the last bytes, 2 bits each, newest in the low bits
    /// ([`Kind::Coarse`]; format version 13 on).
    coarse: u64,
    /// How many of the recent bytes were digits or punctuation: a moving average over
    /// ~32 bytes, 2^16 if all were ([`PUNCTUATED`]; format version 13 on).
    punct: u32,
    /// Count a counter falls back to when its bit had probability below 1/4, on text and on
    /// binary data (chosen by `binary`, as the sparse contexts are).
    surprise: Surprise,
    /// Current column and the start of the previous line, for `Kind::Column`.
    column: u32,
    line_start: usize,
    prev_line_start: usize,
    /// Detects the record length, when `records` is on.
    record: RecordLength,
    /// On binary data with a known record length, the word slots key on records
    /// (format version 5 on).
    records: bool,
    /// On text, the sparse slots key on its structure (format version 13 on).
    structure: Option<Structure>,
    /// In machine code, the instruction decoder.
    code: Option<X86>,
    /// In machine code, whether the recent bytes are code (updated only while `code` is).
    calls: Calls,
    /// On text, where the next byte sits among numbers (format version 13 on).
    numbers: Option<Numbers>,
    /// On text, the rows of delimited fields: lines, and bracketed lists (format version
    /// 13 on).
    rows: Option<[Rows; 2]>,
    /// On binary data, the spreadsheet records followed (format version 13 on).
    cells: Option<Cells>,
    /// A slot whose input column another expert's input takes for this block
    /// ([`Orders::set_displaced`]): it sits the block out and leaves its column alone.
    displaced: Option<usize>,
    /// For [`Kind::Indirect`]: the last four bytes that followed each byte value, and the
    /// byte that last followed each pair of bytes (format version 13 on).
    follow1: Vec<u32>,
    follow2: Vec<u8>,
    /// In machine code, the operand bytes of the last instruction of each hashed
    /// [`X86::key`] (format version 13 on; empty elsewhere).
    operands: Vec<u64>,
    /// Where the block's bytes start in the history (after the primer's): offsets in
    /// machine code count from here ([`CODE_ALIGN`]).
    origin: usize,
    /// The text slots ([`Orders::set_text_slots`]), if any.
    text_slots: Option<TextSlots>,
    /// The byte the copy experts expect next and their match's length, to 15
    /// ([`Orders::expect`]), and the slot keyed on it whose hash waits for it.
    expected: Option<(u8, u32)>,
    expecting: Option<usize>,
}

/// Slots that run on text only, at the end of the kinds, whose inputs take columns that
/// the gate keeps for binary data (the bilevel image's): on text those sit idle, so the
/// slots widen no dot product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TextSlots {
    /// The first text slot.
    first: usize,
    /// The first text slot's input column.
    column: usize,
    /// Whether they ran for the last byte, and whether they stopped at this one.
    on: bool,
    left: bool,
    /// The first slot that also runs on binary data, keyed on binary contexts instead
    /// ([`Orders::set_text_slots`]).
    on_binary: usize,
}

/// Compilers align functions and branch targets to 16 bytes, padding with multi-byte
/// `NOP`s: where the next byte sits within 16 says where padding ends and code starts
/// (paq8px's exe model keys on the position modulo 8; `docs/tuning.md`, "Alignment in
/// machine code").
const CODE_ALIGN: usize = 16;

/// Entries of `Orders::operands`, as log2.
const OPERAND_BITS: u32 = 12;

/// Rows of delimited fields, followed byte by byte: the lines of a table (a row ends at a
/// newline, a field at `,`, tab, `;` or `|`), or bracketed lists such as coordinate pairs
/// (a row opens at `[` and ends at `]`, a field ends at `,`). The field contexts
/// ([`Kind::Field`]) key on them where the last two rows had as many fields.
#[derive(Clone)]
struct Rows {
    brackets: bool,
    /// Inside a row (lines: always).
    open: bool,
    /// Where the current row starts, and where each of its fields after the first starts
    /// (up to [`Rows::MAX_FIELDS`]).
    start: u32,
    fields: Vec<u32>,
    /// The last row: where it and its fields start, and where its terminator is.
    above_start: u32,
    above: Vec<u32>,
    above_end: u32,
    /// Fields after the first in the row before the last one, once there is one.
    above_twice: Option<usize>,
    /// A row has ended.
    closed: bool,
    /// Hash of the current field's bytes so far (lines only: in lists no slot keys on it).
    content: u64,
}

impl Rows {
    const MAX_FIELDS: usize = 1024;

    fn lines() -> Self {
        Rows::new(false)
    }

    fn brackets() -> Self {
        Rows::new(true)
    }

    fn new(brackets: bool) -> Self {
        Rows {
            brackets,
            open: !brackets,
            start: 0,
            fields: Vec::new(),
            above_start: 0,
            above: Vec::new(),
            above_end: 0,
            above_twice: None,
            closed: false,
            content: 0,
        }
    }

    /// Takes the byte at position `pos - 1`.
    fn update(&mut self, pos: usize, byte: u8) {
        let pos = pos as u32;
        let (opens, closes, delimits) = if self.brackets {
            (
                byte == b'[',
                byte == b']' && self.open,
                byte == b',' && self.open,
            )
        } else {
            (
                false,
                byte == b'\n',
                matches!(byte, b',' | b'\t' | b';' | b'|'),
            )
        };
        if closes {
            self.above_twice = self.closed.then_some(self.above.len());
            self.closed = true;
            std::mem::swap(&mut self.fields, &mut self.above);
            self.fields.clear();
            (self.above_start, self.above_end) = (self.start, pos - 1);
            self.start = pos;
            self.open = !self.brackets;
        } else if opens {
            (self.open, self.start) = (true, pos);
            self.fields.clear();
        } else if delimits && self.fields.len() < Rows::MAX_FIELDS {
            self.fields.push(pos);
        }
        if !self.brackets {
            self.content = if closes || delimits {
                0
            } else {
                mix(self.content, u64::from(byte) + 1)
            };
        }
    }

    /// Whether the rows look like a table's: inside a row, the last two had the same
    /// number of fields, at least `min` delimiters.
    fn in_force(&self, min: usize) -> bool {
        self.open && self.above.len() >= min && self.above_twice == Some(self.above.len())
    }

    /// The field-aligned context of the byte at `bytes.len()`: the field's number, the
    /// offset in it, the two bytes at that offset in the same field of the row above (or
    /// where that field ended).
    fn aligned(&self, bytes: &[u8]) -> u64 {
        let f = self.fields.len();
        let start = f.checked_sub(1).map_or(self.start, |i| self.fields[i]) as usize;
        let offset = bytes.len() - start;
        let above_start = match f.checked_sub(1) {
            None => Some(self.above_start as usize),
            Some(i) => self.above.get(i).map(|&s| s as usize),
        };
        // The delimiter (or terminator) that ends the field above.
        let above_end = self.above.get(f).map_or(self.above_end, |&e| e - 1) as usize;
        let at = |i: usize| match above_start {
            Some(a) if a + i < above_end => u64::from(bytes[a + i]) | 0x300,
            Some(a) if a + i == above_end => 0x100,
            Some(_) => 0x200,
            None => 0,
        };
        (f as u64) << 20 ^ (offset.min(31) as u64) << 40 ^ (at(offset) | at(offset + 1) << 10)
    }

    /// The field's number and its bytes so far (lines).
    fn content(&self) -> u64 {
        mix((self.fields.len() as u64) << 20, self.content)
    }
}

/// Column past which a line is long: the column context keys on numbers there, and the
/// line, indentation and word-with-column contexts on the text's shape and nesting (a
/// lower column would take in a table's lines too: `docs/tuning.md`, "Long lines").
const LONG_LINE: u32 = 255;

/// Bytes of a number [`Numbers`] keeps for [`Kind::Digits`]: a longer number's further
/// bytes are not compared.
const NUMBER_BYTES: usize = 16;

/// The share of digits among the recent bytes (out of 2^16, [`Numbers::digits`]) from
/// which text counts as numeric and the second sparse slot keys on [`Kind::Digits`]: 1/4
/// (`docs/tuning.md`, "Numbers aligned place by place").
const NUMERIC: u32 = 1 << 14;

/// How number `a` departs from number `b`, place by place: the first place they differ
/// (or the shorter's length) and a code: 0 nowhere within `a`, 1 nowhere but `b` is
/// shorter, 2 where either byte is not a digit, 3 or 4 a digit one more or one less, 5 or
/// 6 more or less by more than one.
fn departure(a: &[u8], b: &[u8]) -> (u64, usize) {
    let m = a.len().min(b.len());
    match (0..m).find(|&i| a[i] != b[i]) {
        None => (u64::from(b.len() < a.len()), m),
        Some(f) if !(a[f].is_ascii_digit() && b[f].is_ascii_digit()) => (2, f),
        Some(f) => {
            let code = match (a[f] > b[f], a[f].abs_diff(b[f]) == 1) {
                (true, true) => 3,
                (false, true) => 4,
                (true, false) => 5,
                (false, false) => 6,
            };
            (code, f)
        }
    }
}

/// Where the next byte sits among numbers, followed byte by byte: for path data such as
/// `M7.988 12.158c-1.851 0-2.941-1.57`, the command letter, the argument's place after
/// it, and the digit's place in the argument.
#[derive(Clone, Copy, Default)]
struct Numbers {
    /// Inside a number; a point seen in it; its digits before and after the point.
    inside: bool,
    point: bool,
    whole: u8,
    fraction: u8,
    /// The last letter, numbers ended since it, and the last byte outside a number.
    letter: u8,
    count: u8,
    separator: u8,
    /// The share of digits among the recent bytes (decaying by 1/32 per byte, out of 2^16).
    digits: u32,
    /// The bytes (digits and point) of the number being read and of the last four, up to
    /// [`NUMBER_BYTES`] each, and their counts.
    numbers: [[u8; NUMBER_BYTES]; 5],
    lens: [u8; 5],
}

impl Numbers {
    fn update(&mut self, byte: u8) {
        let (inside, point) = (self.inside, self.point);
        self.digits =
            self.digits - (self.digits >> 5) + if byte.is_ascii_digit() { 1 << 11 } else { 0 };
        self.update_place(byte);
        // A number ends at a byte outside numbers or at a point that starts the next one
        // (`1.5.5`); one starts at a digit or a point outside numbers, or at such a point.
        let next = byte == b'.' && inside && point;
        if inside && (!self.inside || next) {
            self.numbers.copy_within(0..4, 1);
            self.lens.copy_within(0..4, 1);
        }
        if self.inside {
            if !inside || next {
                self.lens[0] = 0;
            }
            let n = usize::from(self.lens[0]);
            if n < NUMBER_BYTES {
                self.numbers[0][n] = byte;
                self.lens[0] += 1;
            }
        }
    }

    /// The `k`-th last number's bytes (0: the one being read).
    fn number(&self, k: usize) -> &[u8] {
        &self.numbers[k][..usize::from(self.lens[k])]
    }

    /// [`Kind::Digits`]'s context.
    fn aligned(&self) -> u64 {
        let current = if self.inside { self.number(0) } else { &[] };
        let n = current.len();
        let (before, older) = (self.number(2), self.number(4));
        let at = |i: usize| u64::from(before.get(i).copied().unwrap_or(0));
        // How the number so far departs from the one two back, and how that one departed
        // from the one two before it (the last step, large or in its last place).
        let (relation, _) = departure(current, before);
        let (step, at_step) = departure(before, older);
        let step = if step >= 3 && at_step + 1 < before.len() {
            step + 4
        } else {
            step
        };
        (n.min(15) as u64)
            | u64::from(self.inside) << 4
            | at(n) << 8
            | relation << 16
            | at(n + 1) << 32
            | u64::from(self.letter) << 40
            | step << 48
    }

    /// Follows the next byte's place: inside a number or not, its point, its digits.
    fn update_place(&mut self, byte: u8) {
        match byte {
            b'0'..=b'9' => {
                if !self.inside {
                    *self = Numbers {
                        inside: true,
                        point: false,
                        whole: 0,
                        fraction: 0,
                        ..*self
                    };
                }
                if self.point {
                    self.fraction = self.fraction.saturating_add(1);
                } else {
                    self.whole = self.whole.saturating_add(1);
                }
            }
            b'.' if self.inside && !self.point => self.point = true,
            b'.' => {
                // A number that starts with its point (`.5`, or `1.5.5` for 1.5 0.5).
                self.count = self.count.saturating_add(u8::from(self.inside));
                *self = Numbers {
                    inside: true,
                    point: true,
                    whole: 0,
                    fraction: 0,
                    separator: byte,
                    ..*self
                };
            }
            _ => {
                self.count = self.count.saturating_add(u8::from(self.inside));
                self.inside = false;
                if byte.is_ascii_alphabetic() {
                    (self.letter, self.count) = (byte, 0);
                }
                self.separator = byte;
            }
        }
    }

    fn context(&self) -> u64 {
        u64::from(self.inside)
            | u64::from(self.point) << 1
            | u64::from(self.whole.min(7)) << 2
            | u64::from(self.fraction.min(7)) << 5
            | u64::from(self.letter) << 8
            | u64::from(self.count.min(15)) << 16
            | u64::from(self.separator) << 24
    }
}

/// What the recent bytes are: which kinds the slots run ([`Orders::kind_in`]).
#[derive(Clone, Copy)]
struct Mode {
    /// More than ~1/8 of the recent bytes are not text: the sparse contexts run.
    binary: bool,
    /// Binary, with a record length known.
    records: bool,
    /// Binary, with records of [`NUMBER_RECORDS`] bytes, format version 13 on: the word
    /// slot keys on [`RecordKey::Extrapolated`].
    numbers: bool,
    /// Binary, in a chain of spreadsheet records ([`Cells`]).
    cells: bool,
    /// A table of binary records ([`Orders::tabular`]): the shape slot keys on
    /// [`RecordKey::Field`].
    tabular: bool,
    /// Binary, in a block of machine code.
    code: bool,
    /// Machine code, with format version 13's instruction contexts ([`Kind::Code`] 2-4).
    instructions: bool,
    /// Format version 13 on, outside machine code, and on text after any byte but a
    /// letter: [`Kind::Indirect`].
    indirect: bool,
    /// Text in a table's lines; in a bracketed list's rows; past column [`LONG_LINE`].
    table: bool,
    list: bool,
    long_line: bool,
    /// Text, with the structure contexts on.
    structure: bool,
    /// Text of many digits ([`NUMERIC`]): the second sparse slot keys on [`Kind::Digits`].
    numeric: bool,
    /// Binary data outside machine code, format version 13 on: the order-3 slot keys on
    /// [`BINARY_SPARSE`].
    binary_sparse: bool,
    /// Text with more than [`PUNCTUATED`] digits and punctuation (code, markup, data),
    /// format version 13 on: the binary shape slot keys on [`Kind::Coarse`].
    punctuated: bool,
    /// Prose, on a line that starts with a letter and no indentation, once that letter is
    /// read (format version 13 on): the second sparse slot keys on order 5 instead of the
    /// line's indentation, which says nothing there.
    prose_line: bool,
}

/// The share of digits and punctuation among the recent bytes (out of 2^16) above which
/// text counts as code, markup or data rather than prose: 10%. Prose has ~3-6%; the
/// coarse context gains on the first and costs on prose (`docs/tuning.md`, "Coarse
/// classes").
const PUNCTUATED: u32 = 65536 / 10;

/// The sparse context the order-3 slot keys on in binary data other than machine code
/// (format version 13 on): the bytes 2 and 4 back, the other halves of 16- and 32-bit
/// fields (`docs/tuning.md`, "Binary data and UTF-8").
const BINARY_SPARSE: Kind = Kind::Sparse(0b1010);

/// What the column slot keys on in binary data outside machine code from format version
/// 13: the bytes 4 to 6 back (a line's column means little there; `docs/tuning.md`,
/// "Binary data: the column slot").
const BINARY_COLUMN: Kind = Kind::Sparse(0b11_1000);

/// What the word-two-back text slot keys on in binary data (format version 13): the
/// bytes 1 and 5 back, one of paq8px's sparse contexts (`docs/tuning.md`, "A second text
/// slot on binary data").
const BINARY_SKIP: Kind = Kind::Sparse(0b1_0001);

/// Delimiters a table's line must have, as the line before it, for the field contexts to
/// key on it (fewer are common in code); a bracketed row needs one (a pair).
const TABLE_FIELDS: usize = 4;
const LIST_FIELDS: usize = 1;

/// What the structure contexts of text key on ([`Kind::Nest`], [`Kind::Indent`]),
/// followed byte by byte (the nesting and indentation models of paq8px and cmix).
#[derive(Clone, Copy, Default)]
struct Structure {
    /// Open brackets `(`, `[`, `{` (saturating), and the last 16 opened, 2 bits each,
    /// innermost in the low bits (a closing bracket of any kind closes the innermost).
    depth: u8,
    open: u32,
    /// Inside a `"` string that began on this line.
    quoted: bool,
    /// Whitespace bytes that began the current line, and its first other byte (0 while
    /// there is none).
    indent: u8,
    head: u8,
    /// The previous line's indentation and last byte.
    prev_indent: u8,
    prev_last: u8,
    /// Markup: inside a tag (`<` then a letter, `/`, `!` or `?`, up to `>`); the hash of
    /// the name being read there; the tag's name once read (kept for the content after
    /// the tag), and the attribute whose value follows.
    in_tag: bool,
    name: u32,
    tag: u32,
    attr: u32,
    /// The last byte was a `<` outside a string, and whether it followed a name (as a
    /// generic's `Vec<T>` does: only a closing tag opens there).
    lt: Option<bool>,
}

impl Structure {
    fn update(&mut self, prev: u8, byte: u8) {
        self.update_markup(prev, byte);
        match byte {
            b'\n' => {
                self.prev_indent = self.indent;
                self.prev_last = prev;
                self.indent = 0;
                self.head = 0;
                self.quoted = false;
            }
            b' ' | b'\t' if self.head == 0 => self.indent = self.indent.saturating_add(1),
            _ if self.head == 0 => self.head = byte,
            _ => {}
        }
        if self.quoted {
            self.quoted = !(byte == b'"' && prev != b'\\');
            return;
        }
        let code = match byte {
            b'"' => {
                self.quoted = true;
                return;
            }
            b'(' => 1,
            b'[' => 2,
            b'{' => 3,
            b')' | b']' | b'}' => {
                self.depth = self.depth.saturating_sub(1);
                self.open >>= 2;
                return;
            }
            _ => return,
        };
        self.depth = self.depth.saturating_add(1);
        self.open = (self.open << 2) | code;
    }

    fn update_markup(&mut self, prev: u8, byte: u8) {
        let name_byte = byte.is_ascii_alphanumeric() || matches!(byte, b':' | b'-' | b'_');
        let lt = std::mem::replace(
            &mut self.lt,
            (byte == b'<' && !self.quoted).then(|| prev.is_ascii_alphanumeric()),
        );
        if let Some(after_name) = lt {
            // A tag opens only where a name (or `/`, `!`, `?`) follows: not `a < b`.
            if (byte.is_ascii_alphabetic() && !after_name) || matches!(byte, b'/' | b'!' | b'?') {
                *self = Structure {
                    in_tag: true,
                    name: 0,
                    tag: 0,
                    attr: 0,
                    ..*self
                };
            }
        }
        if !self.in_tag {
            return;
        }
        if name_byte || (byte == b'/' && self.name == 0) {
            if !self.quoted {
                self.name = (self.name ^ u32::from(byte)).wrapping_mul(0x0100_0193);
            }
            return;
        }
        if self.quoted {
            return;
        }
        if self.tag == 0 {
            self.tag = self.name | 1;
        } else if byte == b'=' {
            self.attr = self.name | 1;
        }
        self.name = 0;
        if byte == b'>' {
            self.in_tag = false;
            self.attr = 0;
        }
    }

    /// The nesting context: depth (to 15), the three innermost brackets, the string flag;
    /// in markup, whether a tag is open and the tag or attribute the bytes belong to.
    fn nest(&self) -> u64 {
        let key = if self.in_tag && self.quoted {
            self.attr
        } else {
            self.tag
        };
        u64::from(self.depth.min(15))
            | u64::from(self.open & 63) << 4
            | u64::from(self.quoted) << 10
            | u64::from(self.in_tag) << 11
            | u64::from(key) << 12
    }

    /// The two innermost open brackets with a flag that one is open, and whether a string
    /// is open; 0 outside both.
    fn opened(&self) -> u64 {
        let brackets = if self.depth > 0 {
            u64::from(self.open & 15) | 16
        } else {
            0
        };
        brackets | u64::from(self.quoted) << 5
    }

    /// The line context: indentation (to 63) and the line's first byte; while the
    /// indentation is read, also the previous line's indentation and last byte and the
    /// innermost open bracket, which say how deep this line goes (`{` or `:` before it, one
    /// level deeper).
    fn line(&self) -> u64 {
        let line = u64::from(self.indent.min(63)) | u64::from(self.head) << 8;
        if self.head != 0 {
            return line;
        }
        line | u64::from(self.prev_indent.min(63)) << 16
            | u64::from(self.prev_last) << 24
            | u64::from(self.open & 3) << 32
    }
}

/// The second weight-set group's first set on text (format version 13 on): its
/// [`TEXT_SET_COUNT`] sets from here are chosen node by node, by the highest order context
/// found at the node and whether the word, unigram and (with the text slots) word with
/// separator contexts were (`Lane::set`).
pub(crate) const TEXT_SETS: usize = 8;
pub(crate) const TEXT_SET_COUNT: usize = TEXT_ORDER_STATES * 8;

/// The highest order context found at a node, in the choice among [`TEXT_SETS`]: none, or
/// one of the five order slots.
pub(crate) const TEXT_ORDER_STATES: usize = 6;

/// The second weight-set group's first set in a table of binary records: 16 sets, by the
/// place in the record.
pub(crate) const TABLE_SETS: usize = TEXT_SETS + TEXT_SET_COUNT;

/// Detects a record length from the bytes (the record model of paq8): a byte value that
/// recurs at one distance four times in a row votes for that distance; a distance with
/// more than 7 votes since the last change becomes the record length. paq8 waits for 15:
/// fewer votes find a table's rows sooner, too few follow coincidences (`docs/tuning.md`,
/// "The record length's votes").
#[derive(Clone)]
pub(crate) struct RecordLength {
    /// Per byte value, its last four positions in the block, newest first (0 = none; a
    /// position is the count of bytes up to and including it).
    seen: Box<[[u32; 4]; 256]>,
    /// The two distances with the most recent votes, and their vote counts.
    candidates: [(u32, u32); 2],
    /// The detected length, 0 for none.
    len: u32,
    /// While a length is detected, how often a byte equals the byte a record back
    /// (decaying by 1/64 per byte, out of 2^16).
    repeats: u32,
    /// How far the last records of [`NUMBER_RECORDS`] bytes were from the values their
    /// two predecessors extrapolate to, read big-endian and little-endian: the bytes
    /// each missed (in eighths, per 4 bytes of record), summed over ~16 records. The
    /// order that misses fewer is the data's: in the other, carries run the wrong way.
    misses: [i32; 2],
}

/// [`RecordLength::repeats`] from which records are a table's (5/16): below it, the
/// detected length is as often a coincidence of executables, fonts or compiled code, where
/// the record slots and weight sets keyed on the place in the record cost more than they
/// bring (`docs/tuning.md`, "Tables of binary records").
const TABULAR: u32 = 5 << 12;

impl RecordLength {
    fn new() -> Self {
        RecordLength {
            seen: Box::new([[0; 4]; 256]),
            candidates: [(0, 0); 2],
            len: 0,
            repeats: 0,
            misses: [NUMBERS_OFF; 2],
        }
    }

    fn reset(&mut self) {
        self.seen.fill([0; 4]);
        self.candidates = [(0, 0); 2];
        self.len = 0;
        self.repeats = 0;
        self.misses = [NUMBERS_OFF; 2];
    }

    /// Whether the records are of [`NUMBER_RECORDS`] bytes and follow a series closely
    /// enough to be read as numbers.
    fn series(&self) -> bool {
        NUMBER_RECORDS.contains(&(self.len as usize))
            && self.misses[0].min(self.misses[1]) < NUMBERS_ON
    }

    /// Whether records read as numbers are big-endian.
    fn big_endian(&self) -> bool {
        self.misses[0] <= self.misses[1]
    }

    /// [`RecordKey::Extrapolated`]'s context for the byte after `bytes`, in records of
    /// [`NUMBER_RECORDS`] bytes, the next byte at `place` in its record: the byte at that
    /// place of `2·v1 − v2` (`v1`, `v2` the last two records' values, in the order the
    /// data's misses say), and for a byte after the first how far the last byte was from
    /// its own predicted byte (−3 to 3).
    fn extrapolated(&self, bytes: &[u8], place: usize) -> u64 {
        let r = self.len as usize;
        let Some(start) = bytes.len().checked_sub(place).filter(|&s| s >= 2 * r) else {
            return 0;
        };
        let big = self.big_endian();
        // The byte at `place` of a record is this many bits up its value.
        let shift = |place: usize| 8 * if big { r - 1 - place } else { place } as u32;
        let predicted = extrapolate(&bytes[start - 2 * r..start], big);
        let byte_at = |place: usize| i64::from((predicted >> shift(place)) as u8);
        let missed = match place {
            0 => 7,
            _ => (i64::from(bytes[start + place - 1]) - byte_at(place - 1)).clamp(-3, 3) + 3,
        };
        1 << 16 | (place as u64) << 12 | (missed as u64) << 8 | byte_at(place) as u64
    }

    /// Whether the bytes repeat the byte a record back often enough to be a table's.
    fn tabular(&self) -> bool {
        self.len != 0 && self.repeats >= TABULAR
    }

    /// Takes the byte just coded, the last of `bytes` (the block so far).
    fn update(&mut self, bytes: &[u8]) {
        let (Some(&byte), pos) = (bytes.last(), bytes.len()) else {
            return;
        };
        let r = self.len as usize;
        if r != 0 {
            let repeat = pos > r && bytes[pos - 1 - r] == byte;
            self.repeats = self.repeats - (self.repeats >> 6) + if repeat { 1 << 10 } else { 0 };
        }
        if NUMBER_RECORDS.contains(&r) && pos.is_multiple_of(r) && pos >= 3 * r {
            // A record just ended: how far it was from each order's extrapolation.
            let records = &bytes[pos - 3 * r..pos];
            for (misses, big) in self.misses.iter_mut().zip([true, false]) {
                let value = number(&records[2 * r..], big);
                let miss = value ^ extrapolate(&records[..2 * r], big);
                // In eighths of a byte per 4 bytes of record.
                let wrong = (0..r).filter(|i| (miss >> (8 * i)) & 0xFF != 0).count() * 32 / r;
                *misses = *misses - (*misses >> 4) + wrong as i32;
            }
        }
        let pos = pos as u32;
        let p = &mut self.seen[usize::from(byte)];
        let r = pos - p[0];
        if p[3] != 0 && r > 1 && r == p[0] - p[1] && r == p[1] - p[2] && r == p[2] - p[3] {
            let [(l1, c1), (l2, c2)] = &mut self.candidates;
            if r == *l1 {
                *c1 += 1;
            } else if r == *l2 {
                *c2 += 1;
            } else if *c1 > *c2 {
                (*l2, *c2) = (r, 1);
            } else {
                (*l1, *c1) = (r, 1);
            }
            for (l, c) in self.candidates {
                if c > 7 && self.len != l {
                    self.len = l;
                    self.candidates[0].1 = 0;
                    self.candidates[1].1 = 0;
                    break;
                }
            }
        }
        *p = [pos, p[0], p[1], p[2]];
    }
}

/// The bytes of `record` as a number, read big-endian or little-endian.
fn number(record: &[u8], big: bool) -> u64 {
    let fold = |v: u64, &b: &u8| v << 8 | u64::from(b);
    if big {
        record.iter().fold(0, fold)
    } else {
        record.iter().rev().fold(0, fold)
    }
}

/// `2·v1 − v2` modulo `2^(8r)` for the two records of `r` bytes of `pair` (`v2` first).
fn extrapolate(pair: &[u8], big: bool) -> u64 {
    let r = pair.len() / 2;
    let (v2, v1) = (number(&pair[..r], big), number(&pair[r..], big));
    v1.wrapping_mul(2).wrapping_sub(v2) & u64::MAX >> (64 - 8 * r)
}

/// How a context's counters learn on each kind of data. How far a surprise sets one back:
/// a counter whose bit had probability below 1/4 continues from count `min(count, cap)`,
/// so it follows a change of regime quickly (the nonstationary counters of paq). Prose is
/// close to stationary, records, code and markup change regime often (`docs/tuning.md`,
/// "Counter setbacks"). From format version 13 also how slowly a settled counter moves
/// ([`Surprise::pace`]; "Counters on prose").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Surprise {
    /// Cap while the recent bytes are text, in the order contexts from order `text_from`
    /// up.
    pub(crate) text: u16,
    /// The lowest order that takes the `text` cap.
    pub(crate) text_from: u8,
    /// Cap while they are text, in the other contexts: the lower orders, words, column and
    /// structure.
    pub(crate) text_short: u16,
    /// Whether the long contexts' counters keep the [`LONG_PACE`] and the others' on prose
    /// (text of few digits and punctuation, [`PUNCTUATED`]) the [`PROSE_PACE`], rather
    /// than the [`EVEN_PACE`].
    pub(crate) paced: bool,
    /// Cap while they are binary (`BINARY_ON`).
    pub(crate) binary: u16,
    /// Cap while they are machine code ([`Orders::set_code`]'s instruction contexts in
    /// force).
    pub(crate) code: u16,
}

/// Whether a context of `kind` counts among the long ones, which keep the [`LONG_PACE`].
#[inline]
fn long(kind: Kind) -> bool {
    matches!(kind, Kind::Order(n) if n >= 4)
}

/// From format version 13, the pace of the short contexts' counters on prose: past count 9
/// their rate falls further than `1 / (count + 1.5)` would, to 1/32.5, since what a
/// settled context of prose predicts changes slowly (`docs/tuning.md`, "Counters on
/// prose").
pub(crate) const PROSE_PACE: Pace = pace([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 16, 20, 25, 31]);

/// From format version 13, the pace of the long contexts' counters ([`long`]) on any
/// data: to 1/79.5. A long context that has settled is one that repeats; where its
/// regime changes, the setback (a lower count) speeds it up again (`docs/tuning.md`,
/// "Counters on prose").
pub(crate) const LONG_PACE: Pace = pace([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 22, 31, 43, 58, 78]);

impl Surprise {
    /// No setback (format versions 1 and 2).
    pub(crate) const NONE: Surprise = Surprise {
        text: LIMIT,
        text_from: 4,
        text_short: LIMIT,
        paced: false,
        binary: LIMIT,
        code: LIMIT,
    };
    /// Format versions 3 to 12: one cap for every context on text.
    pub(crate) const UNIFORM_TEXT: Surprise = Surprise {
        text: 6,
        text_from: 4,
        text_short: 6,
        paced: false,
        binary: 2,
        code: 2,
    };
    /// Format version 13 on, with the weight-set groups: the short contexts of text set
    /// back as far as binary ones, order 3 and the longer orders of text hardly at all, and
    /// machine code's further; the counters paced.
    pub(crate) const SPLIT: Surprise = Surprise {
        text: 12,
        text_from: 3,
        text_short: 2,
        paced: true,
        binary: 2,
        code: 1,
    };
    /// [`Surprise::SPLIT`] with a single group (`fast`), where order 3 on text sets back
    /// as far as the short contexts: with one weight set, `fast` codes larger where order 3
    /// is set back as a long order (`docs/tuning.md`, "Counters on prose"). Its counters
    /// reach the gate without the adapt map, which made up for their slow recovery: on
    /// text the short contexts drop to count 1 and the long orders to 4
    /// (`docs/tuning.md`, "`fast` without the adapt map").
    pub(crate) const SPLIT_ONE_GROUP: Surprise = Surprise {
        text: 4,
        text_from: 4,
        text_short: 1,
        ..Surprise::SPLIT
    };

    /// The cap of a context of `kind` while the recent bytes are binary or not, and machine
    /// code or not.
    #[inline]
    fn cap(&self, kind: Kind, binary: bool, code: bool) -> u16 {
        match kind {
            _ if code => self.code,
            _ if binary => self.binary,
            Kind::Order(n) if n >= self.text_from => self.text,
            _ => self.text_short,
        }
    }

    /// The pace of a context of `kind` while the recent bytes are prose
    /// ([`Orders::prose`]) or not.
    #[inline]
    fn pace(&self, kind: Kind, prose: bool) -> &'static Pace {
        match kind {
            _ if !self.paced => &EVEN_PACE,
            kind if long(kind) => &LONG_PACE,
            _ if prose => &PROSE_PACE,
            _ => &EVEN_PACE,
        }
    }
}

/// Count limit of `Orders::adapt`'s cells from format version 13 ([`ADAPT_LIMIT_OLD`]
/// before): a cell averages over more of the bits its counter state saw
/// (`docs/tuning.md`, "Coarse classes").
const ADAPT_LIMIT: u32 = 127;
const ADAPT_LIMIT_OLD: u32 = 63;

/// The depths of a byte's decisions (bits known) that share a set of `Orders::adapt`'s
/// rows (format version 13 on): all. The map learns what a counter's state means in its
/// context kind, which depends little on the depth, and a row set per depth would split
/// what each row learns (`docs/tuning.md`, "The adapt map's depths", "A counter's last
/// bit").
const ADAPT_DEPTHS: [usize; 8] = [0; 8];
// The node loops take context `k`'s rows as row set `k` in the shape that goes with these
// depths ([`AdaptShape::RECENT`]).
const _: () = {
    let mut j = 0;
    while j < 8 {
        assert!(ADAPT_DEPTHS[j] == 0);
        j += 1;
    }
};
/// Before format version 13: a row set per depth.
const ADAPT_DEPTHS_OLD: [usize; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

/// How a counter's state picks its cell of `Orders::adapt`: within the row set of its
/// context kind and depth ([`Orders::adapt_row`]), a row by its count and, from format
/// version 13, its last bit and whether it was on its context's last path; a cell by the
/// bucket of its probability's stretch.
///
/// From version 13 a counter's lowest probability bit is the bit it learned last (a
/// change of 1/4096 in its probability, [`Orders::learn_nibble`]): a counter at 0.8 whose
/// last bit was a 0 predicts less than one whose last was a 1. And a counter off the path
/// of the last byte its context saw has not learned since, where one on it was just
/// right or wrong: the bit histories of lpaq and paq8 keep such recent bits in a
/// context's state (`docs/tuning.md`, "A counter's last bit, brackets and keys").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AdaptShape {
    /// Rows per row set: the count alone (4), or with the last bit and the path (6).
    state_bits: u32,
    /// Width of a stretch bucket, log2: 64 buckets before version 13, 32 from it.
    bucket_shift: u32,
}

impl AdaptShape {
    const OLD: AdaptShape = AdaptShape {
        state_bits: 4,
        bucket_shift: 6,
    };
    const RECENT: AdaptShape = AdaptShape {
        state_bits: 6,
        bucket_shift: 7,
    };

    fn buckets(self) -> usize {
        4096 >> self.bucket_shift
    }

    /// Whether the row keys on the last bit and the path.
    fn recent(self) -> bool {
        self.state_bits > 4
    }

    /// 12-bit probability at the centre of stretch bucket `b`.
    fn bucket_centre(self, b: usize) -> i32 {
        let shift = self.bucket_shift;
        squash(((b as i32) << shift) - 2048 + (1 << (shift - 1)))
    }

    /// The cell for counter cell `cell` in row set `row`, its stretch `st`; `on_path`:
    /// whether the counter was on its context's last path ([`AtNode::on_path`]).
    #[cfg(test)]
    fn index(self, row: usize, cell: u16, st: i32, on_path: bool) -> usize {
        if self.recent() {
            Self::index_in::<true>(row, cell, st, on_path)
        } else {
            Self::index_in::<false>(row, cell, st, on_path)
        }
    }

    /// The cell for counter cell `cell` in row set `row`, its stretch `st`, in
    /// [`AdaptShape::RECENT`] (`RECENT`) or [`AdaptShape::OLD`]; `on_path`: whether the
    /// counter was on its context's last path ([`AtNode::on_path`]). The hot loops choose
    /// the shape once, outside the loops over contexts. `st` is within ±2047, so the
    /// bucket is within range.
    #[inline(always)]
    fn index_in<const RECENT: bool>(row: usize, cell: u16, st: i32, on_path: bool) -> usize {
        let shape = if RECENT { Self::RECENT } else { Self::OLD };
        // The count, and with the path its last bit (the probability's lowest) below it.
        let cell_bits = shape.state_bits - u32::from(RECENT);
        let mut state = usize::from(cell) & ((1 << cell_bits) - 1);
        if RECENT {
            state |= usize::from(on_path) << cell_bits;
        }
        let bucket = (st + 2048) as usize >> shape.bucket_shift;
        (row << shape.state_bits | state) << (12 - shape.bucket_shift) | bucket
    }
}

/// The most context slots a model has ([`AtNode`]).
const MAX_KINDS: usize = 32;

/// A node being predicted ([`Orders::node_inputs`]): node `cell` (at `depth` in the byte,
/// reached by bit `branch`) of the slot each context has for the nibble
/// ([`AtNode::slot`]).
struct NodeAt<'a, const RECENT: bool, const MAPPED: bool> {
    lines: &'a [Line],
    adapt: &'a StateMap,
    /// The node's adapt rows: context `k`'s is `k * stride + row` ([`Orders::adapt_row`]).
    stride: usize,
    row: usize,
    depth: usize,
    /// `1 << depth`: the node's bit of [`AtNode::on_path`].
    depth_bit: u8,
    cell: usize,
    branch: usize,
}

impl<const RECENT: bool, const MAPPED: bool> NodeAt<'_, RECENT, MAPPED> {
    /// The input of context `k`: its counter, and whether it is on the context's last
    /// path: the root of the high slot is, a node below is where the node above was and
    /// last learned the bit that leads here. Moves `now`'s path on to the node's child.
    #[inline(always)]
    fn input(&self, k: usize, now: &mut AtNode) -> i32 {
        let s = now.slot[k];
        if !MAPPED {
            // The path states key the map alone.
            if s == NO_SLOT {
                return 0;
            }
            let cell = self.lines[s as usize >> 1].0[s as usize & 1][self.cell];
            return if cell & 15 == 0 {
                0
            } else {
                stretch(i32::from(cell >> 4))
            };
        }
        if s == NO_SLOT {
            now.follow[k] = 2;
            return 0;
        }
        let on_path = self.depth == 0 || usize::from(now.follow[k]) == self.branch;
        let cell = self.lines[s as usize >> 1].0[s as usize & 1][self.cell];
        now.follow[k] = if on_path { last_bit(cell) as u8 } else { 2 };
        now.on_path[k] |= self.depth_bit & 0u8.wrapping_sub(u8::from(on_path));
        // The recent shape's depths share one row set ([`ADAPT_DEPTHS`]).
        let row = if RECENT {
            k
        } else {
            k * self.stride + self.row
        };
        input_in::<RECENT>(self.adapt, row, cell, on_path)
    }
}

/// The bit a counter cell learned last (format version 13 on: its probability's lowest).
#[inline(always)]
fn last_bit(cell: u16) -> usize {
    usize::from((cell >> 4) & 1)
}

/// Slots per page: all slots of one context (high nibble and the 16 low nibbles) lie in
/// one 4 KiB page, so a prediction's lookups for a context share one TLB entry.
const PAGE_SLOTS: usize = 1 << PAGE_BITS;
const PAGE_BITS: u32 = 7;

/// Slot pair index and non-zero check of the high-nibble slot of context `hash`.
#[inline]
fn place(hash: u64, bits: u32) -> (usize, u16) {
    let index = ((hash >> (64 - bits)) as usize) & !1;
    let check = ((hash >> 8) as u16) | 1;
    (index, check)
}

/// Slot pair index and check of the slot of context `hash` for the low nibble under high
/// nibble `nibble`: in the high slot's page, at an offset hashed from both.
#[inline]
fn place_low(hash: u64, nibble: usize, bits: u32) -> (usize, u16) {
    let page = ((hash >> (64 - bits)) as usize) & !(PAGE_SLOTS - 1);
    let h = mix(hash, nibble as u64 + 1);
    let offset = (h >> 57) as usize & (PAGE_SLOTS - 2);
    (page | offset, ((h >> 8) as u16) | 1)
}

/// The most slots a table of the grown layout (format version 13 on) may have, as log2,
/// and how many doublings below it a table may grow from ([`Orders::grow`]): the primed
/// state's table has `2^20` slots, as the primer's contexts overfill a `2^19` one
/// (`docs/tuning.md`, "The primed table, and four ways").
pub(crate) const GROW_MAX_BITS: u32 = 22;
pub(crate) const GROW_BITS: u32 = 2;

/// The slots a context may take in the grown layout: four, on two adjacent cache lines
/// (the layouts before it two, on one), so a context is less often displaced by others
/// (`docs/tuning.md`, "The primed table, and four ways").
const GROWN_WAYS: usize = 4;

/// The page bits a slot of the grown layout gains when its table grows `k` doublings to
/// `2^bits` slots: from its check's tag ([`grown_check`]).
#[inline]
fn grown_extra(slot: &Slot, bits: u32, k: u32) -> usize {
    let tag = usize::from(slot[0] >> 1) & ((1 << GROW_BITS) - 1);
    (tag >> (GROW_MAX_BITS - bits)) & ((1 << k) - 1)
}

/// The grown layout's page of context `hash` in a table of `2^bits` slots.
#[inline]
fn grown_page(hash: u64, bits: u32) -> usize {
    ((hash >> (64 + PAGE_BITS - bits)) as usize) << PAGE_BITS
}

/// The grown layout's check: bits from 1 hold the [`GROW_BITS`] page bits that a table
/// `2^GROW_BITS` times smaller than the largest lacks, so a slot can move to its page in
/// a larger table; the rest is `hash`'s.
#[inline]
fn grown_check(hash: u64, context: u64) -> u16 {
    let tag = (context >> (64 + PAGE_BITS - GROW_MAX_BITS)) as u16 & ((1 << GROW_BITS) - 1);
    ((hash >> 8) as u16 & !(((1 << GROW_BITS) - 1) << 1)) | (tag << 1) | 1
}

/// [`place`] in the grown layout: the page from the hash's top bits, the offset in it
/// from bits that no table size uses for the page.
#[inline]
fn grown_place(hash: u64, bits: u32) -> (usize, u16) {
    let offset = (hash >> 24) as usize & (PAGE_SLOTS - GROWN_WAYS);
    (grown_page(hash, bits) | offset, grown_check(hash, hash))
}

/// [`place_low`] in the grown layout.
#[inline]
fn grown_place_low(hash: u64, nibble: usize, bits: u32) -> (usize, u16) {
    let h = mix(hash, nibble as u64 + 1);
    let offset = (h >> 57) as usize & (PAGE_SLOTS - GROWN_WAYS);
    (grown_page(hash, bits) | offset, grown_check(h, hash))
}

/// Index of `Orders::operands` for instructions of key `key`.
#[inline]
fn operand_index(key: u64) -> usize {
    (mix(key, 7) >> (64 - OPERAND_BITS)) as usize
}

#[inline]
fn mix(a: u64, b: u64) -> u64 {
    (a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(0xD6E8_FEB8_6659_FD93)
        .rotate_left(29)
}

impl Orders {
    /// Bytes of the context table of `2^bits` slots: what a lane's memory is mostly made of.
    pub(crate) fn table_bytes(bits: u32) -> u64 {
        (std::mem::size_of::<Slot>() as u64) << bits
    }

    /// Heap bytes held now (the memory estimate is checked against it).
    #[cfg(test)]
    pub(crate) fn table_capacity_bytes(&self) -> u64 {
        (self.table.0.capacity() * std::mem::size_of::<Line>()) as u64
    }

    /// A model over `kinds` with a table of `2^bits` slots (`bits >= 7`); `records` lets
    /// the word slots key on records on binary data.
    /// `structure` lets the sparse slots key on text structure ([`Kind::Nest`],
    /// [`Kind::Indent`]) while the data is text; `grows` places slots so the table can
    /// grow ([`Orders::grow`]); `mapped` passes the counters through the adapt map
    /// ([`Orders::mapped`]).
    pub(crate) fn new(
        kinds: &[Kind],
        bits: u32,
        surprise: Surprise,
        records: bool,
        structure: bool,
        grows: bool,
        mapped: bool,
    ) -> Self {
        debug_assert!(!grows || bits <= GROW_MAX_BITS);
        assert!(kinds.len() <= MAX_KINDS, "{} context slots", kinds.len());
        let shape = if structure {
            AdaptShape::RECENT
        } else {
            AdaptShape::OLD
        };
        // Each adapt cell starts at its bucket's centre: at first it says what the counter says.
        let centres: Vec<i32> = (0..shape.buckets())
            .map(|b| shape.bucket_centre(b))
            .collect();
        let depths = if structure {
            ADAPT_DEPTHS
        } else {
            ADAPT_DEPTHS_OLD
        };
        let rows = if mapped {
            (kinds.len() * (depths[7] + 1)) << shape.state_bits
        } else {
            0
        };
        let mut orders = Orders {
            kinds: kinds.to_vec(),
            table: SlotTable::new(bits),
            bits,
            grows,
            dirty: false,
            adapt: StateMap::with_rows(
                rows,
                &centres,
                if structure {
                    ADAPT_LIMIT
                } else {
                    ADAPT_LIMIT_OLD
                },
            ),
            adapt_depths: depths,
            adapt_shape: shape,
            mapped,
            found: vec![
                Found {
                    hash: 0,
                    high: None,
                    low: [None; 16],
                    idle: false,
                };
                kinds.len()
            ],
            at_node: AtNode::START,
            history: 0,
            seen: 0,
            word: 0,
            prev_word: 0,
            older_word: 0,
            keyword: 0,
            separator: 0,
            separator_before: 0,
            binary: 0,
            utf8_due: 0,
            shape: 0,
            line_shape: 0,
            binary_shape: 0,
            coarse: 0,
            punct: 0,
            surprise,
            column: 0,
            line_start: 0,
            prev_line_start: 0,
            record: RecordLength::new(),
            records,
            structure: structure.then(Structure::default),
            code: None,
            calls: Calls::default(),
            rows: structure.then(|| [Rows::lines(), Rows::brackets()]),
            numbers: structure.then(Numbers::default),
            cells: (structure && records).then(Cells::new),
            displaced: None,
            text_slots: None,
            expected: None,
            expecting: None,
            follow1: vec![0; if structure { 256 } else { 0 }],
            follow2: vec![0; if structure { 1 << 16 } else { 0 }],
            operands: Vec::new(),
            origin: 0,
        };
        orders.next_contexts(&[]);
        orders
    }

    /// Models the block as x86 machine code (a block through the x86 filter): on binary
    /// stretches that [`Calls`] finds to be code, the column and unigram slots key on
    /// instructions ([`Kind::Code`]).
    pub(crate) fn set_code(&mut self) {
        self.code = Some(X86::default());
        if self.structure.is_some() {
            self.operands = vec![0; 1 << OPERAND_BITS];
        }
    }

    /// The context of the gate's second weight-set group: in machine code, the field of
    /// the instruction the next byte is in (`1..=7`); on text (format version 13 on), `8`
    /// plus how many order contexts have been seen before (`0..=5`, looked up by
    /// [`Orders::lookup_high`] for this byte): how novel the bytes are; in binary tables
    /// (format version 13 on), `14` plus the place in the record up to 15, so each field
    /// weighs the contexts its own way; 0 elsewhere.
    pub(crate) fn gate_context(&self) -> usize {
        let binary = self.binary();
        match self.code {
            Some(c) if binary && self.calls.code => 1 + c.field as usize,
            _ if binary && self.in_cells() => {
                TABLE_SETS
                    + self
                        .cells
                        .as_ref()
                        .map_or(0, |c| c.place(self.seen as usize))
            }
            _ if self.tabular() => TABLE_SETS + (self.record_column() as usize).min(15),
            _ if !binary && self.structure.is_some() => TEXT_SETS,
            _ => 0,
        }
    }

    /// The fifth weight-set group's set, of `2^bits` (format version 13 on, with the
    /// groups): on text the current word, between words the word before; on binary data
    /// the top five bits of the bytes 3 and 4 back, which the third and fourth groups'
    /// sets (the last two bytes, the class pattern) do not see (`docs/tuning.md`, "A
    /// fifth weight-set group").
    pub(crate) fn fifth_set(&self, bits: u32) -> usize {
        let key = if self.binary() {
            let top = |i: u32| (self.history >> (8 * i + 3)) & 31;
            mix(11, top(2) << 8 | top(3))
        } else if self.word != 0 {
            mix(1, self.word)
        } else {
            mix(2, self.prev_word)
        };
        (key >> (64 - bits)) as usize
    }

    /// Whether the recent bytes are binary records read as numbers ([`Mode::numbers`]).
    fn numbers(&self) -> bool {
        self.binary() && self.structure.is_some() && self.records && self.record.series()
    }

    /// Whether the next byte is in a spreadsheet's cell ([`Cells::in_cells`]; the history
    /// holds `seen` bytes).
    fn in_cells(&self) -> bool {
        let pos = self.seen as usize;
        self.cells.as_ref().is_some_and(|c| c.in_cells(pos))
    }

    /// Where records are read as numbers ([`RecordKey::Extrapolated`]), the byte the last
    /// two records extrapolate to at the next byte's place, and that place; `bytes` being
    /// the block so far.
    pub(crate) fn series(&self, bytes: &[u8]) -> Option<(u8, usize)> {
        if !self.numbers() {
            return None;
        }
        let place = self.record_column() as usize;
        let key = self.record.extrapolated(bytes, place);
        (key != 0).then_some((key as u8, place))
    }

    /// The detected record length while the recent bytes are binary data (the record
    /// contexts in force), if any.
    pub(crate) fn record_length(&self) -> Option<usize> {
        (self.binary() && self.records && self.record.len != 0).then_some(self.record.len as usize)
    }

    /// Whether the recent bytes are a table of binary records (format version 13 on): a
    /// record length is in force and bytes often repeat the byte a record back.
    fn tabular(&self) -> bool {
        self.structure.is_some() && self.record_length().is_some() && self.record.tabular()
    }

    /// The next byte's place in a record of the detected length, counted from the block's
    /// first byte (as paq8's record model counts it).
    fn record_column(&self) -> u64 {
        self.seen % u64::from(self.record.len.max(1))
    }

    /// Whether the recent bytes are prose: text of few digits and punctuation.
    pub(crate) fn prose(&self) -> bool {
        !self.binary() && self.punct <= PUNCTUATED
    }

    /// Whether the recent bytes are binary data (the sparse contexts' switch).
    pub(crate) fn binary(&self) -> bool {
        self.binary > BINARY_ON
    }

    /// Whether the recent bytes are machine code: binary, in a block of x86 code
    /// ([`Orders::set_code`]) where [`Calls`] finds instructions.
    fn machine_code(&self) -> bool {
        self.binary() && self.code.is_some() && self.calls.code
    }

    /// Number of mixer inputs this model provides per node in columns of its own (from
    /// the first it is given); the text slots' go to the columns
    /// [`Orders::set_text_slots`] gave them.
    pub(crate) fn inputs(&self) -> usize {
        self.text_slots.map_or(self.kinds.len(), |t| t.first)
    }

    /// Makes the slots from `first` on text slots (format version 13 on): they run while
    /// the recent bytes are text, and their inputs go to the columns from `column` on,
    /// which the caller keeps for binary data ([`TextSlots`]). The last `on_binary` run
    /// on binary data as well, in their columns, keyed there on binary contexts: the
    /// word-with-column slot on [`Kind::Expected`]. Set once, before the first byte.
    pub(crate) fn set_text_slots(&mut self, first: usize, column: usize, on_binary: usize) {
        debug_assert!(first < self.kinds.len() && on_binary <= self.kinds.len() - first);
        self.text_slots = Some(TextSlots {
            first,
            column,
            on: false,
            left: false,
            on_binary: self.kinds.len() - on_binary,
        });
    }

    /// Gives the byte the copy experts expect next (`None` without a match) and their
    /// match's length, before the next byte's lookups: the [`Kind::Expected`] slot keys on
    /// them.
    pub(crate) fn expect(&mut self, expected: Option<u8>, len: u32) {
        self.expected = expected.map(|e| (e, len.min(15)));
        if let Some(k) = self.expecting.take() {
            let hash = self.hash(k, Kind::Expected, &[]);
            self.found[k].hash = hash;
            self.prefetch_slots(self.place(hash).0);
        }
    }

    /// The text slots' columns when they stopped at this byte (the data turned binary):
    /// the caller clears them, since the slots write them only while they run.
    pub(crate) fn text_slots_left(&self) -> Option<std::ops::Range<usize>> {
        self.text_slots
            .filter(|t| t.left)
            .map(|t| t.column..t.column + self.kinds.len() - t.first)
    }

    /// Forgets what was written so far: this state is the one
    /// [`Orders::restore_from`] returns to.
    pub(crate) fn clear_marks(&mut self) {
        self.table.0.clear_marks();
    }

    /// Returns this model to `src`'s state, given that it was in that state when its marks
    /// were last cleared ([`Orders::clear_marks`]): the context table's written lines are
    /// copied back, the rest whole. The context table may be `src`'s grown (as
    /// [`Orders::grow`] left it); it stays that size, and its written lines are grown
    /// again from `src`'s.
    pub(crate) fn restore_from(&mut self, src: &Orders) {
        // Every field named, so a new one cannot be left out.
        let Orders {
            kinds,
            table,
            bits,
            grows,
            dirty,
            found,
            at_node,
            adapt,
            adapt_depths,
            adapt_shape,
            mapped,
            history,
            seen,
            word,
            prev_word,
            older_word,
            keyword,
            separator,
            separator_before,
            binary,
            utf8_due,
            shape,
            line_shape,
            binary_shape,
            coarse,
            punct,
            surprise,
            column,
            line_start,
            prev_line_start,
            record,
            records,
            structure,
            code,
            calls,
            numbers,
            rows,
            cells,
            displaced,
            follow1,
            follow2,
            operands,
            origin,
            text_slots,
            expected,
            expecting,
        } = src;
        if self.bits == *bits {
            self.table.0.restore_from(&table.0);
        } else {
            // This table grew from `src`'s ([`Orders::grow`]): each line written since is
            // made again from `src`'s slots as growing places them.
            assert!(
                self.grows && self.bits > *bits && self.bits - *bits <= GROW_BITS,
                "restored from a table of another size"
            );
            let (small_bits, bits) = (*bits, self.bits);
            self.table.0.restore_with(|line| {
                let slot = |half| Orders::grown_slot(table, small_bits, bits, 2 * line + half);
                Line([slot(0), slot(1)])
            });
        }
        self.kinds.clone_from(kinds);
        self.grows = *grows;
        self.dirty = *dirty;
        self.found.clone_from(found);
        self.at_node = *at_node;
        self.adapt.clone_from(adapt);
        self.adapt_depths = *adapt_depths;
        self.adapt_shape = *adapt_shape;
        self.mapped = *mapped;
        self.history = *history;
        self.seen = *seen;
        self.word = *word;
        self.prev_word = *prev_word;
        self.older_word = *older_word;
        self.keyword = *keyword;
        self.separator = *separator;
        self.separator_before = *separator_before;
        self.binary = *binary;
        self.utf8_due = *utf8_due;
        self.shape = *shape;
        self.line_shape = *line_shape;
        self.binary_shape = *binary_shape;
        self.coarse = *coarse;
        self.punct = *punct;
        self.surprise = *surprise;
        self.column = *column;
        self.line_start = *line_start;
        self.prev_line_start = *prev_line_start;
        self.record.clone_from(record);
        self.records = *records;
        self.structure.clone_from(structure);
        self.code.clone_from(code);
        self.calls.clone_from(calls);
        self.numbers.clone_from(numbers);
        self.rows.clone_from(rows);
        self.cells.clone_from(cells);
        self.displaced = *displaced;
        self.follow1.clone_from(follow1);
        self.follow2.clone_from(follow2);
        self.operands.clone_from(operands);
        self.origin = *origin;
        self.text_slots = *text_slots;
        self.expected = *expected;
        self.expecting = *expecting;
    }

    /// Forgets the block.
    pub(crate) fn reset(&mut self) {
        if self.dirty {
            self.table.clear();
            self.dirty = false;
        }
        self.adapt.reset();
        self.history = 0;
        self.seen = 0;
        self.word = 0;
        self.prev_word = 0;
        self.older_word = 0;
        self.keyword = 0;
        self.separator = 0;
        self.separator_before = 0;
        self.binary = 0;
        self.utf8_due = 0;
        self.shape = 0;
        self.line_shape = 0;
        self.binary_shape = 0;
        self.coarse = 0;
        self.punct = 0;
        self.column = 0;
        self.line_start = 0;
        self.prev_line_start = 0;
        self.record.reset();
        if let Some(s) = &mut self.structure {
            *s = Structure::default();
        }
        self.code = None;
        self.calls = Calls::default();
        if let Some(rows) = &mut self.rows {
            *rows = [Rows::lines(), Rows::brackets()];
        }
        if let Some(n) = &mut self.numbers {
            *n = Numbers::default();
        }
        if let Some(c) = &mut self.cells {
            c.reset();
        }
        self.displaced = None;
        self.follow1.fill(0);
        self.follow2.fill(0);
        self.operands = Vec::new();
        self.origin = 0;
        self.expected = None;
        self.next_contexts(&[]);
    }

    /// Marks the block's first byte, `at` bytes into the history (after the primer).
    pub(crate) fn start_block(&mut self, at: usize) {
        self.origin = at;
    }

    /// Makes slot `k` (or none) sit the rest of the block out, leaving its input column to
    /// another expert (the neural expert's input takes the unigram slot's: `mixer`,
    /// `Spec::neural_col`). Set at a block's start, before its first byte.
    pub(crate) fn set_displaced(&mut self, k: Option<usize>) {
        self.displaced = k;
        if let Some(k) = k {
            self.found[k].idle = true;
        }
    }

    #[inline]
    fn place(&self, hash: u64) -> (usize, u16) {
        if self.grows {
            grown_place(hash, self.bits)
        } else {
            place(hash, self.bits)
        }
    }

    #[inline]
    fn place_low(&self, hash: u64, nibble: usize) -> (usize, u16) {
        if self.grows {
            grown_place_low(hash, nibble, self.bits)
        } else {
            place_low(hash, nibble, self.bits)
        }
    }

    /// Moves the table to `2^bits` slots, each slot to where a context with its check
    /// would look for it in the larger table: what priming in a small table then growing
    /// gives in place of priming in every table size (format version 13 on). Nothing is
    /// lost: a page of the small table becomes `2^(bits - self.bits)` pages that keep each
    /// slot's offset.
    pub(crate) fn grow(&mut self, bits: u32) {
        if bits == self.bits {
            return;
        }
        assert!(
            self.grows
                && bits > self.bits
                && bits <= GROW_MAX_BITS
                && GROW_MAX_BITS - self.bits <= GROW_BITS,
            "cannot grow a table of 2^{} slots to 2^{bits}",
            self.bits
        );
        let k = bits - self.bits;
        let mut table = SlotTable::new(bits);
        for (s, line) in self.table.lines().iter().enumerate() {
            for (half, slot) in line.0.iter().enumerate() {
                if slot[0] == 0 {
                    continue;
                }
                let s = 2 * s + half;
                let page = ((s >> PAGE_BITS) << k) | grown_extra(slot, bits, k);
                table[(page << PAGE_BITS) | (s & (PAGE_SLOTS - 1))] = *slot;
            }
        }
        self.table = table;
        self.bits = bits;
    }

    /// Slot `t` of `small` (a table of `2^small_bits` slots) grown to `2^bits` slots, as
    /// [`Orders::grow`] places it: the slot at `t`'s offset in the page `t`'s page came
    /// from, where its tag sends it to `t`'s page, else empty.
    fn grown_slot(small: &SlotTable, small_bits: u32, bits: u32, t: usize) -> Slot {
        let k = bits - small_bits;
        let page = t >> PAGE_BITS;
        let slot = small[((page >> k) << PAGE_BITS) | (t & (PAGE_SLOTS - 1))];
        if slot[0] != 0 && grown_extra(&slot, bits, k) == page & ((1 << k) - 1) {
            slot
        } else {
            [0; 16]
        }
    }

    /// The slots a context may take: from slot `i` on, this many.
    #[inline(always)]
    fn ways(&self) -> usize {
        if self.grows {
            GROWN_WAYS
        } else {
            2
        }
    }

    /// Starts fetching the slots from `i` on: one cache line, or two in the grown layout.
    #[inline(always)]
    fn prefetch_slots(&self, i: usize) {
        prefetch(self.table.lines(), i >> 1);
        self.table.prefetch_mark(i >> 1);
        if self.grows {
            prefetch(self.table.lines(), (i >> 1) + 1);
        }
    }

    /// The slot of the set from `i` whose check is `check`, if it holds one.
    #[inline]
    fn lookup(&self, (i, check): (usize, u16)) -> Option<u32> {
        // A set starts a line (its index is a multiple of its ways), and holds a line's
        // two slots or, grown, two lines' four.
        debug_assert_eq!(i % self.ways(), 0, "a set's first slot");
        let lines = self.table.lines();
        let hit =
            |line: &Line| u32::from(line.0[0][0] == check) | u32::from(line.0[1][0] == check) << 1;
        let mut hits = hit(&lines[i >> 1]);
        if self.grows {
            hits |= hit(&lines[(i >> 1) + 1]) << 2;
        }
        // The first slot whose check matches (a check is never held twice in a set).
        (hits != 0).then(|| (i + hits.trailing_zeros() as usize) as u32)
    }

    fn lookup_or_insert(&mut self, (i, check): (usize, u16)) -> usize {
        if let Some(j) = self.lookup((i, check)) {
            return j as usize;
        }
        // Replace the slot whose first node has learned least (its count), the first of
        // those that tie.
        let j = (i..i + self.ways())
            .min_by_key(|&j| self.table[j][1] & 15)
            .unwrap_or(i);
        self.table[j] = [CELL_INIT; 16];
        self.table[j][0] = check;
        self.dirty = true;
        j
    }

    /// The kind slot `k` runs for the next byte, and whether it sits the byte out.
    #[cfg(test)]
    fn in_force(&self, k: usize) -> (Kind, bool) {
        self.kind_in(k, self.mode())
    }

    /// What the recent bytes are, for [`Orders::kind_in`]: computed once per byte.
    fn mode(&self) -> Mode {
        let binary = self.binary();
        let (table, list) = match &self.rows {
            Some([lines, lists]) if !binary => {
                (lines.in_force(TABLE_FIELDS), lists.in_force(LIST_FIELDS))
            }
            _ => (false, false),
        };
        let code = self.machine_code();
        // On prose the indirect contexts cost the order contexts they displace more
        // than they bring; inside words in any text they are the weaker.
        let letter = (self.history as u8).is_ascii_alphabetic();
        let v13 = self.structure.is_some();
        Mode {
            binary,
            records: binary && self.records && self.record.len != 0,
            numbers: self.numbers(),
            cells: binary && self.in_cells(),
            tabular: self.tabular(),
            code,
            instructions: code && v13,
            indirect: v13 && !code && (binary || !letter),
            table,
            list,
            long_line: !binary && self.numbers.is_some() && self.column > LONG_LINE,
            structure: !binary && self.structure.is_some(),
            numeric: !binary && self.numbers.is_some_and(|n| n.digits >= NUMERIC),
            binary_sparse: binary && !code && v13,
            punctuated: !binary && v13 && self.punct > PUNCTUATED,
            prose_line: self.prose()
                && self
                    .structure
                    .is_some_and(|s| s.indent == 0 && s.head.is_ascii_alphabetic()),
        }
    }

    /// The kind slot `k` runs for the next byte in `mode`, and whether it sits the byte
    /// out. Sparse contexts run while more than ~1/8 of the recent bytes are not text. On
    /// such data a word is rarely more than a letter or two, so where a record length is
    /// known the word slots key on records instead (format version 5 on): a bitmap's row, a
    /// table's record; in machine code, the column and unigram slots key on instructions.
    /// On text, the sparse slots key on its structure (the second on order 5 on a line of
    /// prose, [`Mode::prose_line`]), in a table's lines or a list's rows the column and
    /// unigram slots on fields, on long lines the column slot on numbers, and outside prose
    /// the binary shape slot on coarse classes (format version 13 on).
    #[inline]
    fn kind_in(&self, k: usize, mode: Mode) -> (Kind, bool) {
        let Mode {
            binary,
            records,
            numbers,
            cells,
            tabular,
            code,
            instructions,
            indirect,
            table,
            list,
            long_line,
            structure,
            numeric,
            binary_sparse,
            punctuated,
            prose_line,
        } = mode;
        let kind = match self.kinds[k] {
            Kind::Word if cells => Kind::Cell(0),
            Kind::Column if cells => Kind::Cell(1),
            Kind::Shape if cells => Kind::Cell(2),
            Kind::Order(4) if instructions => Kind::Code(2),
            Kind::Order(3) if instructions => Kind::Code(3),
            Kind::Word if instructions => Kind::Code(4),
            Kind::Order(3) if binary_sparse => BINARY_SPARSE,
            Kind::Order(4) if indirect => Kind::Indirect(1),
            Kind::Order(2) if indirect => Kind::Indirect(2),
            Kind::Column if code => Kind::Code(0),
            Kind::Column if table => Kind::Field(0),
            Kind::Unigram if table => Kind::Field(1),
            Kind::Column if list => Kind::Field(2),
            Kind::Column if long_line => Kind::Number,
            Kind::Unigram if code => Kind::Code(1),
            Kind::Shape if tabular => Kind::Record(RecordKey::Field),
            Kind::Word if numbers => Kind::Record(RecordKey::Extrapolated),
            Kind::Word if records => Kind::Record(RecordKey::AboveLeft),
            Kind::Column if binary_sparse => BINARY_COLUMN,
            Kind::Unigram if records => Kind::Record(RecordKey::AboveTwice),
            Kind::Sparse(0b110) if structure => Kind::Nest,
            Kind::Sparse(_) if numeric => Kind::Digits,
            Kind::Sparse(_) if prose_line => Kind::Order(5),
            Kind::Sparse(_) if structure => Kind::Indent,
            Kind::Line(_) if binary => Kind::Line(1),
            Kind::BinaryShape if punctuated => Kind::Coarse,
            Kind::BinaryShape if structure => Kind::Wrap,
            Kind::WordColumn if binary => Kind::Expected,
            Kind::WordSkip if binary => BINARY_SKIP,
            kind => kind,
        };
        let idle = (matches!(kind, Kind::Sparse(_) | Kind::BinaryShape) && !binary)
            || Some(k) == self.displaced
            || self
                .text_slots
                .is_some_and(|t| k >= t.first && k < t.on_binary && binary);
        (kind, idle)
    }

    /// Hash of slot `k`'s context as it stands, `bytes` being the block so far.
    #[cfg(test)]
    fn context_hash(&self, k: usize, bytes: &[u8]) -> u64 {
        self.hash(k, self.in_force(k).0, bytes)
    }

    /// Hash of slot `k`'s context when it runs as `kind`.
    fn hash(&self, k: usize, kind: Kind, history_bytes: &[u8]) -> u64 {
        let mut hash = self.context_key(k, kind, history_bytes);
        if self.structure.is_some() {
            // `mix` leaves the low bits of its product to the hash's middle bits only, so
            // contexts of far history bytes crowded a few pages of the table: one more
            // round spreads every bit (format version 13 on).
            hash ^= hash >> 32;
            hash = hash.wrapping_mul(0xD6E8_FEB8_6659_FD93);
            hash ^= hash >> 32;
        }
        hash
    }

    /// What [`Orders::hash`] spreads: slot `k`'s context as `kind` keys it, mixed with
    /// the slot's tag.
    fn context_key(&self, k: usize, kind: Kind, history_bytes: &[u8]) -> u64 {
        let tag = (k as u64 + 1) << 56;
        match kind {
            Kind::Order(n) => {
                let n = u64::from(n).min(self.seen).min(8);
                let mask = if n == 8 {
                    u64::MAX
                } else {
                    (1u64 << (8 * n)) - 1
                };
                mix(tag ^ n << 48, self.history & mask)
            }
            Kind::Shape => mix(tag, self.shape & ((1 << (4 * SHAPE_ORDER)) - 1)),
            // Past a long line's first bytes its shape so far is unique: the last 16 classes.
            Kind::Line(0) if self.column > LONG_LINE => mix(tag ^ 0x55 << 52, self.shape),
            Kind::Line(0) => mix(tag, self.line_shape),
            Kind::Line(_) => mix(
                tag ^ 1 << 48,
                (self.seen & 3) | (self.binary_shape & 0xFFF) << 8,
            ),
            Kind::Coarse => mix(tag ^ 1 << 48, self.coarse),
            Kind::Wrap => {
                let previous = (self.line_start - self.prev_line_start).min(127) as u64;
                let last = coarse_class(self.history as u8);
                mix(
                    tag ^ 2 << 48,
                    u64::from(self.column.min(255)) | last << 8 | (previous / 8) << 10,
                )
            }
            Kind::BinaryShape => mix(
                tag,
                self.binary_shape & ((1 << (3 * BINARY_SHAPE_ORDER)) - 1),
            ),
            Kind::Word => mix(tag ^ self.word, self.prev_word),
            Kind::Unigram => mix(tag, self.word),
            Kind::Recent => {
                let key = if self.word == 0 {
                    self.history & 0xFFFF
                } else {
                    self.word
                };
                mix(tag ^ (self.seen >> RECENT_WINDOW) << 8, key)
            }
            Kind::WordGap => {
                let separator = if self.word == 0 {
                    self.separator
                } else {
                    self.separator_before
                };
                // Inside brackets or a string, words end otherwise (`[[France]]`).
                let open = self.structure.unwrap_or_default().opened();
                mix(tag ^ self.word ^ open << 40, separator)
            }
            // Off prose the key a value belongs to says more than the word two back.
            Kind::WordSkip if !self.prose() => mix(tag ^ self.word ^ 0x4d << 48, self.keyword),
            Kind::WordSkip => mix(tag ^ self.word, self.older_word ^ 0x1234),
            // The column says nothing on a long line (minified code, path data): the nesting.
            Kind::WordColumn if self.column > LONG_LINE => mix(
                tag ^ self.word ^ 0x77 << 52,
                self.structure.unwrap_or_default().nest(),
            ),
            Kind::WordColumn => mix(tag ^ self.word, u64::from(self.column >> 2)),
            Kind::Expected => {
                let key = match self.expected {
                    Some((e, len)) => 1 << 40 | u64::from(len) << 16 | u64::from(e) << 8,
                    None => 2 << 40 | (self.history & 0xFF00),
                };
                mix(tag ^ 7 << 48, key | (self.history & 0xFF))
            }
            Kind::Sparse(mask) => {
                let mut m = 0u64;
                for i in 0..8 {
                    if mask & (1 << i) != 0 {
                        m |= 0xFF << (8 * i);
                    }
                }
                mix(tag ^ u64::from(mask) << 40, self.history & m)
            }
            Kind::Record(key) => {
                let r = self.record.len as usize;
                let pos = history_bytes.len();
                let back = |d: usize| {
                    if (1..=pos).contains(&d) {
                        u64::from(history_bytes[pos - d])
                    } else {
                        0
                    }
                };
                let (variant, bytes) = match key {
                    RecordKey::AboveLeft => (1, back(r) | back(1) << 8),
                    RecordKey::AboveTwice => (2, back(r) | back(2 * r) << 8),
                    RecordKey::Field => (3, back(r) | self.record_column() << 8),
                    RecordKey::Extrapolated => (
                        4,
                        self.record
                            .extrapolated(history_bytes, self.record_column() as usize),
                    ),
                };
                mix(tag ^ variant << 48 ^ (r as u64) << 16, bytes)
            }
            Kind::Nest => {
                let nest = self.structure.unwrap_or_default().nest();
                let recent = self.history & ((1u64 << (8 * NEST_ORDER)) - 1);
                mix(tag ^ 1 << 48 ^ nest << 16, recent)
            }
            // A long line's indentation and first byte hold for thousands of bytes.
            Kind::Indent if self.column > LONG_LINE => {
                let nest = self.structure.unwrap_or_default().nest();
                mix(mix(tag ^ 0x66 << 52, nest), self.history & 0xFFFF)
            }
            Kind::Indent => {
                // The line context has more than 48 bits: hashed in two steps.
                let line = self.structure.unwrap_or_default().line();
                let recent = self.history & ((1u64 << (8 * INDENT_ORDER)) - 1);
                mix(mix(tag ^ 2 << 48, line), recent)
            }
            Kind::Code(variant) => {
                let x = self.code.unwrap_or_default();
                let tag = tag ^ u64::from(variant) << 48;
                match variant {
                    2 => {
                        let [a, b, c, d] = x.prev.map(u64::from);
                        let opcodes = a | b << 16 | c << 32 | d << 48;
                        mix(tag, mix(x.at() | x.op_prefixes() << 8, opcodes))
                    }
                    // The instruction's bytes so far (variant 4 outside operands: with the
                    // previous opcode).
                    3 | 4 if variant == 3 || !x.in_operand() => {
                        let n = u32::from(x.len.min(8));
                        let so_far = if n == 8 {
                            self.history
                        } else {
                            self.history & ((1u64 << (8 * n)) - 1)
                        };
                        let before = if variant == 4 { x.prev[0] } else { 0 };
                        let at = x.at() | x.op_prefixes() << 8 | u64::from(n) << 40;
                        mix(tag, mix(at | u64::from(before) << 44, so_far))
                    }
                    4 => {
                        // In an operand: the operand of the last instruction alike, and
                        // this operand's bytes so far.
                        let n = u32::from(x.index);
                        let so_far = self.history & ((1u64 << (8 * n)) - 1);
                        let alike = self.operands[operand_index(x.key())];
                        mix(tag, mix(mix(x.at(), x.key()) ^ so_far, alike))
                    }
                    _ => {
                        let offset = history_bytes.len().wrapping_sub(self.origin);
                        let last = if variant == 1 {
                            self.history & 0xFF | ((offset % CODE_ALIGN) as u64) << 8
                        } else if x.in_near_target() {
                            // The filter made the target an offset in the block.
                            1 << 8 | (offset >> 8) as u64 & 0xFF
                        } else {
                            0
                        };
                        mix(tag, mix(x.context(), last))
                    }
                }
            }
            Kind::Indirect(variant) => {
                let c1 = self.history & 0xFF;
                let c2 = self.history & 0xFFFF;
                let context = if variant == 1 {
                    c1 | u64::from(self.follow1[c1 as usize]) << 8
                } else {
                    c2 | u64::from(self.follow2[c2 as usize]) << 16
                };
                mix(tag ^ u64::from(variant) << 48, context)
            }
            Kind::Cell(variant) => {
                let context = self
                    .cells
                    .as_ref()
                    .map_or(0, |c| c.context(variant, history_bytes));
                mix(tag ^ 0x33 << 48, context)
            }
            Kind::Field(variant) => {
                // In force only where fields are tracked.
                let rows = self.rows.as_ref().map(|r| &r[usize::from(variant >> 1)]);
                let context = rows.map_or(0, |rows| {
                    if variant & 1 == 0 {
                        mix(rows.aligned(history_bytes), self.history & 0xFFFF)
                    } else {
                        rows.content()
                    }
                });
                mix(tag ^ u64::from(variant) << 48, context)
            }
            Kind::Number => {
                let numbers = self.numbers.as_ref().map_or(0, Numbers::context);
                mix(tag ^ 1 << 48, numbers | (self.history & 0xFF) << 40)
            }
            Kind::Digits => mix(
                tag ^ 7 << 48,
                self.numbers.as_ref().map_or(0, Numbers::aligned),
            ),
            Kind::Column => {
                let above = self.prev_line_start + self.column as usize;
                let byte_above = if above < self.line_start {
                    u64::from(history_bytes[above])
                } else {
                    0
                };
                mix(
                    tag ^ u64::from(self.column.min(255)),
                    byte_above | (self.history & 0xFF) << 8,
                )
            }
        }
    }

    /// Looks up every context's high-nibble slot (coding bit by bit: the inputs follow
    /// node by node from [`Orders::node_inputs`]).
    pub(crate) fn lookup_high(&mut self) {
        for k in 0..self.kinds.len() {
            let found = self.found[k];
            let high = if found.idle {
                None
            } else {
                self.lookup(self.place(found.hash))
            };
            self.found[k].high = high;
            self.at_node.slot[k] = high.unwrap_or(NO_SLOT);
        }
        self.at_node.nibble = None;
    }

    /// Starts fetching every context's low-nibble slot under high nibble `nibble`, before
    /// the high nibble is known (coding bit by bit: with 3 of its bits known, the two
    /// candidates), so [`Orders::lookup_low`] finds them in the cache.
    pub(crate) fn prefetch_low(&self, nibble: usize) {
        for found in self.found.iter().filter(|f| !f.idle) {
            self.prefetch_slots(self.place_low(found.hash, nibble).0);
        }
    }

    /// Looks up every context's slot for the low nibble under high nibble `nibble`, once
    /// the high nibble is known (coding bit by bit).
    pub(crate) fn lookup_low(&mut self, nibble: usize) {
        for k in 0..self.kinds.len() {
            if !self.found[k].idle {
                let hash = self.found[k].hash;
                self.found[k].low[nibble] = self.lookup(self.place_low(hash, nibble));
            }
            self.at_node.slot[k] = self.found[k].low[nibble].unwrap_or(NO_SLOT);
        }
        self.at_node.nibble = Some(nibble);
    }

    /// Writes the inputs of node `c0` alone into `row[first..]`, from the slots
    /// [`Orders::lookup_high`] and [`Orders::lookup_low`] found: the values
    /// [`Orders::predict_high`] and [`Orders::predict_low`] give that node. Coding bit by
    /// bit, a byte's nodes come in order, each below the one before; from format version
    /// 13 each context follows its last path along them ([`AtNode::on_path`]).
    #[inline]
    pub(crate) fn node_inputs<const N: usize>(
        &mut self,
        c0: usize,
        row: &mut [i32; N],
        first: usize,
    ) {
        let depth = c0.ilog2() as usize;
        // The node's cell in its slot: the high nibble's, or that of low nibbles under
        // `low`; and the bit that led to the node.
        let (cell, low) = if depth < 4 {
            (c0, None)
        } else {
            let j = depth - 4;
            ((1 << j) | (c0 & ((1 << j) - 1)), Some((c0 >> j) - 16))
        };
        let branch = c0 & 1;
        match (self.mapped, self.adapt_shape.recent()) {
            (true, true) => {
                self.node_inputs_at::<N, true, true>(row, first, depth, cell, low, branch)
            }
            (true, false) => {
                self.node_inputs_at::<N, false, true>(row, first, depth, cell, low, branch)
            }
            (false, _) => {
                self.node_inputs_at::<N, true, false>(row, first, depth, cell, low, branch)
            }
        }
    }

    #[inline(always)]
    fn node_inputs_at<const N: usize, const RECENT: bool, const MAPPED: bool>(
        &mut self,
        row: &mut [i32; N],
        first: usize,
        depth: usize,
        cell: usize,
        low: Option<usize>,
        branch: usize,
    ) {
        debug_assert_eq!(low, self.at_node.nibble, "node_inputs before its lookup");
        // A displaced slot's column holds another expert's input: kept, not overwritten.
        let kept = self.displaced.map(|k| row[first + k]);
        let at = NodeAt::<RECENT, MAPPED> {
            lines: self.table.lines(),
            adapt: &self.adapt,
            stride: self.adapt_depths[7] + 1,
            row: self.adapt_depths[depth],
            depth,
            depth_bit: 1 << depth,
            cell: cell & 15,
            branch,
        };
        let now = &mut self.at_node;
        let n = self.text_slots.map_or(self.kinds.len(), |t| t.first);
        for (k, x) in row[first..first + n].iter_mut().enumerate() {
            *x = at.input(k, now);
        }
        if let Some(t) = self.text_slots {
            // On binary data the last slots alone: the first columns are the counting
            // fields'.
            let from = if t.on { 0 } else { t.on_binary - t.first };
            now.follow[t.first..t.first + from].fill(2);
            for k in t.first + from..self.kinds.len() {
                row[t.column + k - t.first] = at.input(k, now);
            }
        }
        if let (Some(k), Some(x)) = (self.displaced, kept) {
            row[first + k] = x;
        }
    }

    /// The row set of `adapt` for context kind `k` at depth `j` (bits of the byte known).
    #[inline(always)]
    fn adapt_row(&self, k: usize, j: usize) -> usize {
        k * (self.adapt_depths[7] + 1) + self.adapt_depths[j]
    }

    /// Trains the 4 counters on the path of `nibble` in slot `s` of context `k`, and the
    /// adapt cells their states selected ([`AdaptShape`]; `on_path`: bit `j`, whether the
    /// node at depth `j` in the nibble was on the context's last path when predicted).
    /// From format version 13 each counter then keeps the bit it learned as its
    /// probability's lowest bit.
    #[inline(always)]
    fn learn_nibble(
        &mut self,
        k: usize,
        s: usize,
        nibble: usize,
        depth: usize,
        rule: (u16, &Pace),
        on_path: u8,
    ) {
        match (self.mapped, self.adapt_shape.recent()) {
            (true, true) => self.learn_nibble_in::<true, true>(k, s, nibble, depth, rule, on_path),
            (true, false) => {
                self.learn_nibble_in::<false, true>(k, s, nibble, depth, rule, on_path)
            }
            (false, recent) => {
                debug_assert!(recent, "a plain model without the map's shape");
                self.learn_nibble_in::<true, false>(k, s, nibble, depth, rule, on_path);
            }
        }
    }

    #[inline(always)]
    fn learn_nibble_in<const RECENT: bool, const MAPPED: bool>(
        &mut self,
        k: usize,
        s: usize,
        nibble: usize,
        depth: usize,
        (cap, pace): (u16, &Pace),
        on_path: u8,
    ) {
        // The four nodes are distinct cells, so their counters step side by side; the
        // adapt cells they select may coincide, so those learn one after another, in the
        // nodes' order.
        let nodes: [usize; 4] = std::array::from_fn(|j| (1 << j) | (nibble >> (4 - j)));
        let bits: [u32; 4] = std::array::from_fn(|j| ((nibble >> (3 - j)) & 1) as u32);
        let slot = &mut self.table[s];
        let cells: [u16; 4] = nodes.map(|node| slot[node]);
        let stepped = bump16x4(cells, bits, LIMIT, cap, pace);
        for (j, (&node, &cell)) in nodes.iter().zip(&stepped).enumerate() {
            slot[node] = if RECENT {
                (cell & !16) | (bits[j] as u16) << 4
            } else {
                cell
            };
        }
        if !MAPPED {
            return;
        }
        let st: [i32; 4] = cells.map(|cell| stretch(i32::from(cell >> 4)));
        let at: [usize; 4] = std::array::from_fn(|j| {
            // The recent shape's depths share one row set ([`ADAPT_DEPTHS`]).
            let row = if RECENT {
                k
            } else {
                self.adapt_row(k, depth + j)
            };
            AdaptShape::index_in::<RECENT>(row, cells[j], st[j], (on_path >> j) & 1 != 0)
        });
        for j in 0..4 {
            if cells[j] & 15 != 0 {
                self.adapt.update(at[j], bits[j]);
            }
        }
    }

    /// Trains every context's counters on the path of byte `b` (`binary`, `code`,
    /// `prose`: what the prediction saw).
    #[inline(always)]
    fn learn(&mut self, b: usize, binary: bool, code: bool, prose: bool) {
        for k in 0..self.kinds.len() {
            let found = &self.found[k];
            if found.idle {
                continue;
            }
            let (hash, high, low) = (found.hash, found.high, found.low[b >> 4]);
            let on_path = self.at_node.on_path[k];
            let kind = self.kinds[k];
            let rule = (
                self.surprise.cap(kind, binary, code),
                self.surprise.pace(kind, prose),
            );
            let s = match high {
                Some(s) => s as usize,
                None => self.lookup_or_insert(self.place(hash)),
            };
            self.learn_nibble(k, s, b >> 4, 0, rule, on_path & 15);
            let s = match low {
                Some(s) => s as usize,
                None => self.lookup_or_insert(self.place_low(hash, b >> 4)),
            };
            self.learn_nibble(k, s, b & 15, 4, rule, on_path >> 4);
        }
    }

    /// Learns `byte` in every context, then moves the contexts on.
    pub(crate) fn update(&mut self, bytes: &[u8], byte: u8) {
        let b = usize::from(byte);
        // `binary` is still the value the prediction saw: it moves on below.
        let binary = self.binary();
        let code = self.machine_code();
        let prose = self.prose();
        self.learn(b, binary, code, prose);
        self.dirty = true;
        // Move the contexts on.
        self.history = (self.history << 8) | u64::from(byte);
        self.seen += 1;
        let mut text = matches!(byte, b'\t' | b'\n' | b'\r' | 0x20..=0x7E);
        if self.structure.is_some() {
            // `byte` followed the byte before it and the pair before it.
            if self.seen >= 2 {
                let f = &mut self.follow1[(self.history >> 8) as usize & 0xFF];
                *f = (*f << 8) | u32::from(byte);
            }
            if self.seen >= 3 {
                self.follow2[(self.history >> 8) as usize & 0xFFFF] = byte;
            }
            // Format version 13 on, UTF-8 sequences are text too: Cyrillic or Japanese
            // prose is not binary data.
            (text, self.utf8_due) = match (byte, self.utf8_due) {
                (0xC2..=0xDF, _) => (true, 1),
                (0xE0..=0xEF, _) => (true, 2),
                (0xF0..=0xF4, _) => (true, 3),
                (0x80..=0xBF, due @ 1..) => (true, due - 1),
                _ => (text, 0),
            };
            // The shape contexts' classes: a run of one class is kept twice at most.
            let class = shape_class(byte);
            let run = class == self.shape & 15 && class == self.shape >> 4 & 15;
            if !run {
                self.shape = self.shape << 4 | class;
                self.line_shape = if byte == b'\n' {
                    0
                } else {
                    mix(self.line_shape, class + 1)
                };
            }
            self.binary_shape = self.binary_shape << 3 | binary_class(byte);
            let class = coarse_class(byte);
            self.coarse = self.coarse << 2 | class;
            // Classes 1 and 3: digits and punctuation.
            self.punct = self.punct - (self.punct >> 5) + if class & 1 != 0 { 1 << 11 } else { 0 };
        }
        self.binary = self.binary - (self.binary >> 5) + if text { 0 } else { 1 << 11 };
        let lower = byte.to_ascii_lowercase();
        // Format version 13 on, a character of three or four UTF-8 bytes (Chinese,
        // Japanese: no spaces between words) is a word of its own, so the word contexts
        // see the characters before it, not a sentence-long word that never repeats.
        if byte >= 0xE0 && self.structure.is_some() {
            self.end_word();
        }
        if lower.is_ascii_alphabetic() || byte >= 0x80 {
            if self.word == 0 {
                self.separator_before = self.separator;
                self.separator = 0;
            }
            self.word = mix(self.word ^ 0x5bd1_e995, u64::from(lower) + 1);
        } else {
            let ended = self.word;
            self.end_word();
            // `key: value`, `key=value`, `"key": value`.
            let quote = matches!((self.history >> 8) as u8, b'"' | b'\'');
            if matches!(byte, b':' | b'=') && (ended != 0 || quote) {
                self.keyword = self.prev_word;
            }
            self.separator = mix(self.separator ^ 0x2545_f491, u64::from(byte) + 1);
        }
        let pos = bytes.len(); // bytes already holds `byte` at pos - 1
        for rows in self.rows.iter_mut().flatten() {
            rows.update(pos, byte);
        }
        if let Some(n) = &mut self.numbers {
            n.update(byte);
        }
        if byte == b'\n' {
            self.prev_line_start = self.line_start;
            self.line_start = pos;
            self.column = 0;
        } else {
            self.column = self.column.saturating_add(1);
        }
        self.record.update(bytes);
        if let Some(c) = &mut self.cells {
            c.update(bytes, self.origin);
        }
        if let Some(s) = &mut self.structure {
            s.update((self.history >> 8) as u8, byte);
        }
        if let Some(c) = &mut self.code {
            c.update(byte);
            if let (Some((key, operand)), false) = (c.completed, self.operands.is_empty()) {
                self.operands[operand_index(key)] = operand;
            }
            self.calls.update(self.history);
        }
        self.next_contexts(bytes);
    }

    /// Ends the current word, if one is being read: it becomes the word before.
    fn end_word(&mut self) {
        if self.word != 0 {
            self.older_word = self.prev_word;
            self.prev_word = self.word;
            self.word = 0;
        }
    }

    /// Computes the next byte's contexts from the block so far, `bytes`, and starts
    /// fetching their high-nibble slots, so the misses overlap the rest of the lane's
    /// update.
    fn next_contexts(&mut self, bytes: &[u8]) {
        let mode = self.mode();
        if let Some(t) = &mut self.text_slots {
            t.left = t.on && mode.binary;
            t.on = !mode.binary;
        }
        self.expecting = None;
        for k in 0..self.kinds.len() {
            let (kind, idle) = self.kind_in(k, mode);
            let hash = if kind == Kind::Expected && !idle {
                // Its hash waits for `expect`, which writes it before any lookup.
                self.expecting = Some(k);
                0
            } else {
                self.hash(k, kind, bytes)
            };
            self.found[k] = Found {
                hash,
                high: None,
                low: [None; 16],
                idle,
            };
        }
        // The fetches after every hash, so their page walks overlap.
        for k in 0..self.kinds.len() {
            let found = &self.found[k];
            if !found.idle && Some(k) != self.expecting {
                self.prefetch_slots(self.place(found.hash).0);
            }
        }
        self.at_node = AtNode::START;
    }
}

/// A counter's input in a shape chosen outside ([`AdaptShape::index_in`]).
#[inline(always)]
fn input_in<const RECENT: bool>(adapt: &StateMap, row: usize, cell: u16, on_path: bool) -> i32 {
    if cell & 15 == 0 {
        0
    } else {
        let st = stretch(i32::from(cell >> 4));
        let i = AdaptShape::index_in::<RECENT>(row, cell, st, on_path);
        (adapt.st(i) + st) >> 1
    }
}

impl Snapshot for Line {
    fn walk(&mut self, w: &mut Walker<'_>) {
        w.pods(self.0.as_flattened_mut());
    }

    /// A run of lines at a time: a table is millions of lines.
    fn walk_slice(lines: &mut [Self], w: &mut Walker<'_>) {
        w.parts(lines);
    }
}

impl AsMut<[u16]> for Line {
    fn as_mut(&mut self) -> &mut [u16] {
        self.0.as_flattened_mut()
    }
}

impl Snapshot for Found {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Found {
            hash,
            high,
            low,
            idle,
        } = self;
        hash.walk(w);
        high.walk(w);
        low.walk(w);
        idle.walk(w);
    }
}

impl Snapshot for AtNode {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let AtNode {
            slot,
            on_path,
            follow,
            nibble,
        } = self;
        slot.walk(w);
        on_path.walk(w);
        follow.walk(w);
        nibble.walk(w);
    }
}

impl Snapshot for TextSlots {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let TextSlots {
            first,
            column,
            on,
            left,
            on_binary,
        } = self;
        first.walk(w);
        column.walk(w);
        on.walk(w);
        left.walk(w);
        on_binary.walk(w);
    }
}

impl Snapshot for Rows {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Rows {
            brackets,
            open,
            start,
            fields,
            above_start,
            above,
            above_end,
            above_twice,
            closed,
            content,
        } = self;
        brackets.walk(w);
        open.walk(w);
        start.walk(w);
        fields.walk(w);
        above_start.walk(w);
        above.walk(w);
        above_end.walk(w);
        above_twice.walk(w);
        closed.walk(w);
        content.walk(w);
    }
}

impl Snapshot for Numbers {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Numbers {
            inside,
            point,
            whole,
            fraction,
            letter,
            count,
            separator,
            digits,
            numbers,
            lens,
        } = self;
        inside.walk(w);
        point.walk(w);
        whole.walk(w);
        fraction.walk(w);
        letter.walk(w);
        count.walk(w);
        separator.walk(w);
        digits.walk(w);
        numbers.walk(w);
        lens.walk(w);
    }
}

impl Snapshot for Structure {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Structure {
            depth,
            open,
            quoted,
            indent,
            head,
            prev_indent,
            prev_last,
            in_tag,
            name,
            tag,
            attr,
            lt,
        } = self;
        depth.walk(w);
        open.walk(w);
        quoted.walk(w);
        indent.walk(w);
        head.walk(w);
        prev_indent.walk(w);
        prev_last.walk(w);
        in_tag.walk(w);
        name.walk(w);
        tag.walk(w);
        attr.walk(w);
        lt.walk(w);
    }
}

impl Snapshot for RecordLength {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let RecordLength {
            seen,
            candidates,
            len,
            repeats,
            misses,
        } = self;
        seen.walk(w);
        candidates.walk(w);
        len.walk(w);
        repeats.walk(w);
        misses.walk(w);
    }
}

impl Snapshot for Surprise {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Surprise {
            text,
            text_from,
            text_short,
            paced,
            binary,
            code,
        } = self;
        text.walk(w);
        text_from.walk(w);
        text_short.walk(w);
        paced.walk(w);
        binary.walk(w);
        code.walk(w);
    }
}

impl Snapshot for Orders {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Orders {
            kinds,
            table,
            bits,
            grows,
            dirty,
            found,
            at_node,
            adapt,
            adapt_shape:
                AdaptShape {
                    state_bits,
                    bucket_shift,
                },
            adapt_depths,
            mapped,
            history,
            seen,
            word,
            prev_word,
            older_word,
            keyword,
            separator,
            separator_before,
            binary,
            utf8_due,
            shape,
            line_shape,
            binary_shape,
            coarse,
            punct,
            surprise,
            column,
            line_start,
            prev_line_start,
            record,
            records,
            structure,
            code,
            calls,
            numbers,
            rows,
            cells,
            displaced,
            follow1,
            follow2,
            operands,
            origin,
            text_slots,
            expected,
            expecting,
        } = self;
        w.check(format!("{kinds:?}").as_bytes());
        w.check(&bits.to_le_bytes());
        w.check(&[u8::from(*grows), u8::from(*mapped)]);
        w.check_len(found.len());
        w.check(&[state_bits.to_le_bytes(), bucket_shift.to_le_bytes()].concat());
        table.0.walk(w);
        dirty.walk(w);
        Found::walk_slice(found, w);
        at_node.walk(w);
        adapt.walk(w);
        adapt_depths.walk(w);
        for x in [
            history,
            seen,
            word,
            prev_word,
            older_word,
            keyword,
            separator,
            separator_before,
            shape,
            line_shape,
            binary_shape,
            coarse,
        ] {
            x.walk(w);
        }
        binary.walk(w);
        utf8_due.walk(w);
        punct.walk(w);
        surprise.walk(w);
        column.walk(w);
        line_start.walk(w);
        prev_line_start.walk(w);
        record.walk(w);
        records.walk(w);
        structure.walk(w);
        code.walk(w);
        calls.walk(w);
        numbers.walk(w);
        w.fixed(rows);
        w.fixed(cells);
        displaced.walk(w);
        follow1.walk(w);
        follow2.walk(w);
        operands.walk(w);
        origin.walk(w);
        w.fixed(text_slots);
        expected.walk(w);
        expecting.walk(w);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::logistic::tests::bump16;
    use crate::test_data::noise;

    /// Runs `data` through a model of `kinds` the way the mixer does.
    fn run(kinds: &[Kind], data: &[u8]) -> Orders {
        run_as(kinds, data, false)
    }

    /// [`run`], with format version 13's structure (`structure`) or without; with it,
    /// bit by bit, as version 13 codes.
    fn run_as(kinds: &[Kind], data: &[u8], structure: bool) -> Orders {
        run_mapped(kinds, data, structure, true)
    }

    /// [`run_as`], with the adapt map (`mapped`) or without.
    fn run_mapped(kinds: &[Kind], data: &[u8], structure: bool, mapped: bool) -> Orders {
        let mut orders = Orders::new(
            kinds,
            16,
            Surprise::UNIFORM_TEXT,
            true,
            structure,
            false,
            mapped,
        );
        let mut inputs = [[0i32; 16]; 256];
        for i in 0..data.len() {
            if structure {
                orders.lookup_high();
                for j in 0..8 {
                    let c0 = (1 << j) | usize::from(data[i]) >> (8 - j);
                    if (16..32).contains(&c0) {
                        orders.lookup_low(c0 - 16);
                    }
                    orders.node_inputs(c0, &mut inputs[c0], 0);
                }
            } else {
                orders.predict_high(&mut inputs, 0);
                orders.predict_low(0xFFFF, &mut inputs, 0);
            }
            orders.update(&data[..=i], data[i]);
        }
        orders
    }

    /// A function giving the structure after the bytes given so far and the new ones.
    fn structure_after() -> impl FnMut(&[u8]) -> Structure {
        let (mut s, mut prev) = (Structure::default(), 0);
        move |text| {
            for &b in text {
                s.update(prev, b);
                prev = b;
            }
            s
        }
    }

    #[test]
    fn the_structure_follows_brackets_strings_and_indentation() {
        let mut after = structure_after();
        let t = after(b"  fn f(a: [u8");
        assert_eq!(
            (t.depth, t.open & 15, t.indent, t.head),
            (2, 0b0110, 2, b'f')
        );
        let t = after(b"; 2]) {\n");
        assert_eq!((t.depth, t.open & 3, t.indent, t.head), (1, 3, 0, 0));
        // While the indentation is read, the line context knows the line before: its
        // indentation, its last byte and the bracket it left open.
        assert_eq!((t.prev_indent, t.prev_last), (2, b'{'));
        let (reading, read) = (t.line(), after(b"    x").line());
        assert_eq!(reading, 2 << 16 | u64::from(b'{') << 24 | 3 << 32);
        assert_eq!(read, 4 | u64::from(b'x') << 8);
        let t = after(b";\n");
        assert_eq!(t.line(), 4 << 16 | u64::from(b';') << 24 | 3 << 32);
        // Inside a string brackets do not count and an escaped quote does not close it.
        let t = after(b"    let s = \"(\\\"[");
        assert!(t.quoted);
        assert_eq!((t.depth, t.indent, t.head), (1, 4, b'l'));
        let t = after(b"\";\n}");
        assert!(!t.quoted);
        assert_eq!((t.depth, t.indent, t.head), (0, 0, b'}'));
        // A newline ends a string left open; a stray closing bracket stays at depth 0.
        let t = after(b"\"open\n)");
        assert!(!t.quoted);
        assert_eq!(t.depth, 0);
    }

    /// In markup the nesting context knows the tag, and inside an attribute's value the
    /// attribute; a `<` that opens no tag (`a < b`) changes nothing.
    #[test]
    fn the_structure_follows_tags_and_attributes() {
        let mut after = structure_after();
        let path = after(b"<svg><path d=\"M0");
        assert!(path.in_tag && path.quoted && path.attr != 0);
        let d = path.nest();
        let view = after(b"\" viewBox=\"0");
        assert!(view.in_tag && view.quoted);
        assert_ne!(view.nest(), d);
        let t = after(b"\"/>text");
        assert!(!t.in_tag && t.tag == path.tag);
        let t = after(b" if a < b");
        assert!(!t.in_tag && t.tag == path.tag);
        let t = after(b"</svg>");
        assert!(!t.in_tag && t.tag != path.tag);
    }

    #[test]
    fn text_sets_short_contexts_back_further_than_long_orders() {
        let split = Surprise::SPLIT;
        for kind in [
            Kind::Order(1),
            Kind::Order(2),
            Kind::Word,
            Kind::Column,
            Kind::Nest,
        ] {
            assert_eq!(split.cap(kind, false, false), 2, "{kind:?} on text");
        }
        assert_eq!(split.cap(Kind::Order(3), false, false), 12);
        // `fast`'s, read without the adapt map: further back, and order 3 with the short.
        let one_group = Surprise::SPLIT_ONE_GROUP;
        for kind in [Kind::Order(1), Kind::Order(3), Kind::Word, Kind::Unigram] {
            assert_eq!(one_group.cap(kind, false, false), 1, "{kind:?} on text");
        }
        assert_eq!(one_group.cap(Kind::Order(4), false, false), 4);
        assert_eq!(one_group.cap(Kind::Order(6), true, false), 2);
        assert_eq!(one_group.cap(Kind::Order(6), true, true), 1);
        assert_eq!(split.cap(Kind::Order(6), false, false), 12);
        assert_eq!(split.cap(Kind::Order(6), true, false), 2);
        assert_eq!(split.cap(Kind::Order(6), true, true), 1);
        assert_eq!(Surprise::UNIFORM_TEXT.cap(Kind::Order(1), false, false), 6);
        assert_eq!(Surprise::UNIFORM_TEXT.cap(Kind::Order(1), true, true), 2);
    }

    /// From format version 13 the long contexts' counters slow down past count 9 on any
    /// data, the others' on prose; before version 13 they keep the even pace.
    #[test]
    fn settled_counters_move_slowly_in_long_contexts_and_on_prose() {
        let split = Surprise::SPLIT;
        for prose in [false, true] {
            assert_eq!(split.pace(Kind::Order(5), prose), &LONG_PACE);
        }
        assert_eq!(split.pace(Kind::Order(2), true), &PROSE_PACE);
        assert_eq!(split.pace(Kind::Word, true), &PROSE_PACE);
        assert_eq!(split.pace(Kind::Word, false), &EVEN_PACE);
        assert_eq!(
            Surprise::UNIFORM_TEXT.pace(Kind::Order(5), true),
            &EVEN_PACE
        );
        // Prose is text: binary data is never prose, whatever its punctuation.
        let mut orders = Orders::new(
            &[Kind::Order(1)],
            16,
            Surprise::SPLIT,
            true,
            true,
            false,
            true,
        );
        let data = noise(4096, 5);
        for i in 0..data.len() {
            orders.update(&data[..=i], data[i]);
        }
        assert!(orders.binary() && !orders.prose());
        for pace in [PROSE_PACE, LONG_PACE] {
            assert!(pace.windows(2).all(|w| w[0] > w[1]));
            assert_eq!(pace[..10], EVEN_PACE[..10]);
        }
        // A settled counter after a run of 1s: the paced ones have moved less toward a 0.
        let settled = |pace: &Pace| {
            let mut cell = CELL_INIT;
            for _ in 0..40 {
                bump16(&mut cell, 1, LIMIT, LIMIT, pace);
            }
            let before = cell >> 4;
            bump16(&mut cell, 0, LIMIT, LIMIT, pace);
            before - (cell >> 4)
        };
        let (even, prose, long) = (
            settled(&EVEN_PACE),
            settled(&PROSE_PACE),
            settled(&LONG_PACE),
        );
        assert!(
            long > 0 && 2 * long < prose && prose < even,
            "{long} {prose} {even}"
        );
    }

    #[test]
    fn a_surprise_sets_a_confident_counter_back() {
        let mut cell = CELL_INIT;
        for _ in 0..40 {
            bump16(
                &mut cell,
                1,
                LIMIT,
                Surprise::UNIFORM_TEXT.binary,
                &EVEN_PACE,
            );
        }
        assert_eq!(cell & 15, LIMIT);
        let mut patient = cell;
        bump16(&mut patient, 0, LIMIT, LIMIT, &EVEN_PACE);
        bump16(
            &mut cell,
            0,
            LIMIT,
            Surprise::UNIFORM_TEXT.binary,
            &EVEN_PACE,
        );
        // From count 2 the 0 moves the probability ~5 times further than from count 15.
        assert_eq!(cell & 15, Surprise::UNIFORM_TEXT.binary + 1);
        let moved = |c: u16| 4095 - i32::from(c >> 4);
        assert!(moved(cell) > 4 * moved(patient), "{cell:#x} {patient:#x}");
        // An expected bit leaves the count alone.
        let mut steady = patient;
        bump16(
            &mut steady,
            1,
            LIMIT,
            Surprise::UNIFORM_TEXT.binary,
            &EVEN_PACE,
        );
        assert_eq!(steady & 15, LIMIT);
    }

    /// From format version 13 a kind's counters share the adapt map's rows across all the
    /// depths of a byte (its rows keyed by the last bit and the path too); before, each
    /// depth had rows of its own.
    #[test]
    fn the_adapt_map_rows_are_per_kind_and_before_version_13_per_depth() {
        let kinds = [Kind::Order(1), Kind::Order(2)];
        let new = Orders::new(&kinds, 16, Surprise::UNIFORM_TEXT, true, true, false, true);
        let old = Orders::new(&kinds, 16, Surprise::UNIFORM_TEXT, true, false, false, true);
        let rows = |o: &Orders, k| (0..8).map(|j| o.adapt_row(k, j)).collect::<Vec<_>>();
        assert_eq!(rows(&new, 0), [0; 8]);
        assert_eq!(rows(&new, 1), [1; 8]);
        assert_eq!(rows(&old, 1), (8..16).collect::<Vec<_>>());
        assert_eq!(new.adapt.len(), kinds.len() * 64 * 32);
        assert_eq!(old.adapt.len(), kinds.len() * 8 * 16 * 64);
    }

    /// From format version 13 a counter's last bit picks its adapt row with its count.
    #[test]
    fn the_adapt_map_learns_what_a_counters_last_bit_says() {
        // After `a` comes `X` or `Y`, the same as last time three times in four: at the
        // node where they part, a counter near even odds cannot say which comes, but the
        // bit it learned last can.
        let mut data = Vec::new();
        let mut next = b'X';
        for r in noise(60_000, 7) {
            if r < 64 {
                next ^= 1;
            }
            data.extend_from_slice(&[b'a', next]);
        }
        let orders = run_as(&[Kind::Order(1)], &data, true);
        assert_eq!(orders.adapt_shape, AdaptShape::RECENT);
        let row = orders.adapt_row(0, 7);
        let cell = |last: u16| (2048 & !1 | last) << 4 | LIMIT;
        // The node is on the context's last path: every byte after `a` passes it.
        let learned = |last| {
            let i = orders.adapt_shape.index(row, cell(last), 0, true);
            orders.adapt.p(i)
        };
        assert!(learned(1) > 2048 + 400, "after a 1: {}", learned(1));
        assert!(learned(0) < 2048 - 400, "after a 0: {}", learned(0));
        // Before version 13 the lowest bit is the probability's alone.
        let old = run(&[Kind::Order(1)], &data);
        assert_eq!(old.adapt_shape, AdaptShape::OLD);
        let index = |last, on_path| old.adapt_shape.index(row, cell(last), 0, on_path);
        assert_eq!(index(0, true), index(1, false));
    }

    /// Coding bit by bit, each context follows the path of the last byte it saw along the
    /// byte's nodes: a node is on it where the node above was and last learned the bit
    /// that leads to it.
    #[test]
    fn a_context_follows_its_last_path_along_the_bytes_nodes() {
        let on_path = |byte: u8| {
            // The context `b` last saw `c` (0110 0011).
            let mut orders = run_as(&[Kind::Order(1)], b"abcab", true);
            orders.lookup_high();
            let mut row = [0i32; 16];
            for j in 0..8 {
                let c0 = (1 << j) | usize::from(byte) >> (8 - j);
                if (16..32).contains(&c0) {
                    orders.lookup_low(c0 - 16);
                }
                orders.node_inputs(c0, &mut row, 0);
            }
            orders.at_node.on_path[0]
        };
        assert_eq!(on_path(b'c'), 0xFF);
        // 0110 0010: the last node's own bit differs, not one above it.
        assert_eq!(on_path(b'b'), 0xFF);
        // 0110 0001: parts at the seventh bit, so the last node is off the path.
        assert_eq!(on_path(b'a'), 0x7F);
        // 0111 1000: parts at the fourth bit, and no low slot under 0111 was seen.
        assert_eq!(on_path(b'x'), 0x0F);
    }

    /// Without the adapt map (`fast`) the counters learn as with it, and each reaches the
    /// gate as its own stretch; the map holds nothing.
    #[test]
    fn without_the_map_a_counter_is_its_own_input() {
        let kinds = [Kind::Order(1), Kind::Order(2), Kind::Word];
        let data = noise(3000, 11);
        let text: Vec<u8> = data
            .iter()
            .map(|&b| b"abcde fgh"[usize::from(b) % 9])
            .collect();
        let mapped = run_mapped(&kinds, &text, true, true);
        let mut plain = run_mapped(&kinds, &text, true, false);
        assert_eq!(plain.adapt.len(), 0);
        let cells = |o: &Orders| -> Vec<u16> {
            o.table
                .lines()
                .iter()
                .flat_map(|l| l.0.iter().flatten().copied())
                .collect()
        };
        assert!(cells(&mapped) == cells(&plain), "the counters learn alike");
        plain.lookup_high();
        let mut row = [0i32; 16];
        let mut seen = 0;
        for c0 in 1..16usize {
            // Without the map no path state is followed: any node, in any order.
            plain.node_inputs(c0, &mut row, 0);
            for (k, &x) in row.iter().enumerate().take(kinds.len()) {
                let expect = match plain.found[k].high {
                    Some(s) if plain.table[s as usize][c0] & 15 != 0 => {
                        seen += 1;
                        stretch(i32::from(plain.table[s as usize][c0] >> 4))
                    }
                    _ => 0,
                };
                assert_eq!(x, expect, "context {k}, node {c0}");
            }
        }
        assert!(seen > 0);
    }

    #[test]
    fn the_adapt_map_learns_that_a_deterministic_context_repeats_itself() {
        // Each byte is a fixed function of the two before it, so an order-2 context seen
        // once is always followed by what followed it then.
        let mut data = vec![1u8, 2];
        for i in 2..60_000 {
            let next = data[i - 1].wrapping_mul(31) ^ data[i - 2].wrapping_mul(17) ^ 0x5A;
            data.push(next.wrapping_add((i / 20_000) as u8));
        }
        let orders = run(&[Kind::Order(2)], &data);
        // A counter that has seen a single 1 says ~0.83; in this data the next bit is a 1.
        let mut cell = CELL_INIT;
        bump16(&mut cell, 1, LIMIT, LIMIT, &EVEN_PACE);
        let counter_p = i32::from(cell >> 4);
        for depth in [0, 4, 7] {
            let row = orders.adapt_row(0, depth);
            let i = orders
                .adapt_shape
                .index(row, cell, stretch(counter_p), true);
            let learned = orders.adapt.p(i);
            assert!(
                learned > counter_p + 300,
                "depth {depth}: map {learned}, counter {counter_p}"
            );
            assert_eq!(orders.adapt.st(i), stretch(learned));
        }
    }

    /// The context hashes of the first two slots after `text`.
    fn first_two(orders: &Orders, text: &[u8]) -> (u64, u64) {
        (orders.context_hash(0, text), orders.context_hash(1, text))
    }

    /// The text slots' word contexts: the word with the separator before it, the word with
    /// the word two back, the word with the column in fours.
    #[test]
    fn the_text_slots_word_contexts_key_on_separator_older_word_and_column() {
        let kinds = [Kind::WordGap, Kind::WordSkip, Kind::WordColumn];
        let hashes = |text: &[u8]| {
            let orders = run(&kinds, text);
            [0, 1, 2].map(|k| orders.context_hash(k, text))
        };
        let plain = hashes(b"a big cat sa");
        let comma = hashes(b"a big cat, sa");
        let small = hashes(b"a small cat sa");
        let dog = hashes(b"a big dog sa");
        // "sa" after "cat": the separator before it is the same space.
        assert_eq!(hashes(b"one big cat sa")[0], plain[0]);
        assert_ne!(comma[0], plain[0]);
        // Between words the separator so far: after ", " whatever the word before.
        assert_eq!(hashes(b"a big, ")[0], hashes(b"one dog, ")[0]);
        assert_ne!(hashes(b"a big, ")[0], hashes(b"a big; ")[0]);
        // The word two back is "big" in both; the last word is skipped.
        assert_eq!(dog[1], hashes(b"a big cow sa")[1]);
        assert_ne!(small[1], plain[1]);
        // The column in fours: "sa" at column 12 or 13 alike, at column 16 not.
        assert_eq!(hashes(b"ab big cat sa")[2], plain[2]);
        assert_ne!(hashes(b"abcde big cat sa")[2], plain[2]);
    }

    /// From format version 13 the word with its separator keys on the brackets and string
    /// the word is in, and off prose the word with the word two back keys on the key whose
    /// value the text is in instead.
    #[test]
    fn word_contexts_key_on_brackets_and_on_the_key_of_a_value() {
        let kinds = [Kind::WordGap, Kind::WordSkip];
        let hashes = |text: &[u8]| {
            let orders = run_as(&kinds, text, true);
            [0, 1].map(|k| orders.context_hash(k, text))
        };
        let plain = hashes(b"a big cat sa");
        assert_ne!(hashes(b"[[a big cat sa")[0], plain[0]);
        assert_ne!(hashes(b"[[a big cat sa")[0], hashes(b"(a big cat sa")[0]);
        assert_ne!(hashes(b"\"a big cat sa")[0], plain[0]);
        assert_eq!(hashes(b"[[x]] a big cat sa")[0], plain[0]);
        let value = b"x{color: 12 34 red";
        assert!(!run_as(&kinds, value, true).prose());
        assert_ne!(hashes(value)[1], hashes(b"x{margin: 12 34 red")[1]);
        assert_eq!(hashes(value)[1], hashes(b"x{color: 56 78 red")[1]);
        assert_eq!(hashes(value)[1], hashes(b"x{\"color\": 5 7 red")[1]);
    }

    /// From format version 13 the last text slot runs on binary data too, keyed on the
    /// byte the copy expects with the last byte and the match's length to 15, or without
    /// a match on the last two bytes; the others sit binary data out.
    #[test]
    fn on_binary_data_the_last_text_slot_keys_on_the_expected_byte() {
        let kinds = [
            Kind::Order(1),
            Kind::WordGap,
            Kind::WordSkip,
            Kind::WordColumn,
        ];
        let after = |tail: &[u8]| {
            let mut data = noise(4096, 3);
            data.extend_from_slice(tail);
            let mut orders = Orders::new(&kinds, 16, Surprise::SPLIT, true, true, false, true);
            orders.set_text_slots(1, 20, 1);
            for i in 0..data.len() {
                orders.update(&data[..=i], data[i]);
            }
            assert!(orders.binary());
            (orders, data)
        };
        let (mut orders, data) = after(&[1, 2, 3]);
        assert!(
            orders.in_force(1).1 && orders.in_force(2).1,
            "the others sit it out"
        );
        assert_eq!(orders.in_force(3), (Kind::Expected, false));

        // The hash waits for the expected byte, then is the context's.
        orders.expect(Some(9), 20);
        let expected = orders.context_hash(3, &data);
        assert_eq!(orders.found[3].hash, expected);
        orders.expect(Some(9), 30);
        assert_eq!(
            orders.context_hash(3, &data),
            expected,
            "lengths past 15 alike"
        );
        orders.expect(Some(8), 20);
        assert_ne!(orders.context_hash(3, &data), expected);
        let with = |tail: &[u8], copy: Option<u8>| {
            let (mut o, d) = after(tail);
            o.expect(copy, 20);
            o.context_hash(3, &d)
        };
        assert_eq!(with(&[7, 5, 3], Some(9)), expected, "the last byte alone");
        assert_ne!(with(&[1, 2, 4], Some(9)), expected);
        // Without a match, the last two bytes.
        assert_eq!(with(&[7, 2, 3], None), with(&[1, 2, 3], None));
        assert_ne!(with(&[1, 5, 3], None), with(&[1, 2, 3], None));
        assert_ne!(with(&[1, 2, 3], None), expected);
    }

    #[test]
    fn the_unigram_context_is_the_current_word_whatever_came_before() {
        let kinds = [Kind::Word, Kind::Unigram];
        let hashes = |text: &[u8]| first_two(&run(&kinds, text), text);
        let (red, blue, other) = (
            hashes(b"a red Zebu"),
            hashes(b"one blue zebu"),
            hashes(b"a red zebr"),
        );
        assert_eq!(red.1, blue.1, "same word, case folded");
        assert_ne!(
            red.0, blue.0,
            "the word context also keys on the word before"
        );
        assert_ne!(red.1, other.1);
    }

    /// The recent-window context: the current word, or between words the last two bytes,
    /// in the window of [`RECENT_WINDOW`] bytes the next byte falls in.
    #[test]
    fn the_recent_context_is_the_word_in_its_window() {
        let hash = |text: &[u8]| run(&[Kind::Recent], text).context_hash(0, text);
        let window = 1usize << RECENT_WINDOW;
        let padded = |fill: usize, tail: &[u8]| {
            let mut text = vec![b'.'; fill];
            text.extend_from_slice(tail);
            text
        };
        // Both end in one window, after different text.
        let (a, b) = (padded(10, b"x red Zeb"), padded(100, b"one, zeb"));
        assert_eq!(hash(&a), hash(&b), "same word, same window, case folded");
        let next = padded(window + 10, b" zeb");
        assert_ne!(hash(&a), hash(&next), "the next window keys apart");
        assert_ne!(hash(&padded(10, b"a zeb")), hash(&padded(10, b"a zed")));
        // Between words: the last two bytes.
        let (c, d) = (padded(10, b"dog, "), padded(20, b"cat, "));
        assert_eq!(hash(&c), hash(&d));
        assert_ne!(hash(&c), hash(&padded(10, b"dog. ")));
    }

    /// A model with the text structure on (format version 13) that has learned `data`.
    fn learned(kinds: &[Kind], data: &[u8]) -> Orders {
        let mut orders = Orders::new(kinds, 16, Surprise::UNIFORM_TEXT, true, true, false, true);
        for i in 0..data.len() {
            orders.update(&data[..=i], data[i]);
        }
        orders
    }

    #[test]
    fn after_punctuation_short_orders_key_on_what_followed_them() {
        let kinds = [2, 4].map(Kind::Order);
        let hashes = |text: &[u8]| first_two(&learned(&kinds, text), text);
        // `1` was followed by `a` then `b` in the first two (`c` then `b` in the third);
        // `;1` came before only in the second, followed by `b`.
        let (one, two, other) = (
            hashes(b"x1a;y1b;z;1"),
            hashes(b"p1a,q;1b,r;1"),
            hashes(b"x1c;y1b;z;1"),
        );
        assert_eq!(one.1, two.1, "the last byte and the four that followed it");
        assert_ne!(one.1, other.1);
        assert_eq!(
            one.0, other.0,
            "the last two bytes and the byte that followed them"
        );
        assert_ne!(one.0, two.0);
        // After a letter the orders are themselves.
        let words = learned(&kinds, b"x1a;y1b;z;1a");
        assert_eq!(words.in_force(0).0, Kind::Order(2));
        assert_eq!(words.in_force(1).0, Kind::Order(4));
        assert_eq!(
            learned(&kinds, b"x1a;y1b;z;1").in_force(1).0,
            Kind::Indirect(1)
        );
    }

    #[test]
    fn the_gate_context_says_text_tables_or_other_binary_data() {
        let kinds = [1, 2, 3, 4, 6].map(Kind::Order);
        // Text: the lane counts the orders found node by node from `TEXT_SETS`.
        let mut orders = learned(&kinds, b"the quick brown fox. the quick brown fox");
        orders.lookup_high();
        assert_eq!(orders.gate_context(), TEXT_SETS);
        // A table of binary records of 7 bytes: `TABLE_SETS` plus the place in the
        // record, which counts from the block's first byte (1,400 bytes in, a record
        // starts).
        let mut orders = learned(&kinds, &[0u8, 1, 2, 3, 200, 201, 202].repeat(200));
        orders.lookup_high();
        assert_eq!(orders.record_length(), Some(7));
        assert_eq!(orders.gate_context(), TABLE_SETS);
        let mut orders = learned(&kinds, &[0u8, 1, 2, 3, 200, 201, 202].repeat(201)[..1403]);
        orders.lookup_high();
        assert_eq!(orders.gate_context(), TABLE_SETS + 3);
        // Binary data that is neither code nor a table: group 1's single set.
        let mut orders = learned(&kinds, &noise(1400, 1));
        orders.lookup_high();
        assert!(orders.binary());
        assert_eq!(orders.gate_context(), 0);
    }

    #[test]
    fn in_tables_the_shape_slot_keys_on_the_field_above() {
        let kinds = [Kind::Shape];
        let table = learned(&kinds, &[0u8, 1, 2, 3, 200, 201, 202].repeat(200));
        assert!(table.tabular());
        assert_eq!(table.in_force(0).0, Kind::Record(RecordKey::Field));
        // Records whose bytes rarely repeat a record back are not a table.
        let mut bytes = Vec::new();
        for field in noise(900, 7).chunks_exact(3) {
            bytes.push(0xFF);
            bytes.extend_from_slice(field);
        }
        let loose = learned(&kinds, &bytes);
        assert_eq!(loose.record_length(), Some(4));
        assert!(!loose.tabular());
        assert_eq!(loose.in_force(0).0, Kind::Shape);
    }

    #[test]
    fn delimited_rows_key_on_fields() {
        let kinds = [Kind::Column, Kind::Unigram];
        let after = |data: &[u8]| {
            let orders = learned(&kinds, data);
            let hashes = (orders.context_hash(0, data), orders.context_hash(1, data));
            ((orders.in_force(0).0, orders.in_force(1).0), hashes)
        };
        // The third field's first byte: the field above is "9" in both, at other columns.
        let (kinds_a, a) = after(b"x,y,z,u,v\n1,2,9,4,5\n12,34,");
        let (_, b) = after(b"x,y,z,u,v\n111,2222,9,4,5\n7,34,");
        let (_, c) = after(b"x,y,z,u,v\n1,2,8,4,5\n12,34,");
        assert_eq!(kinds_a, (Kind::Field(0), Kind::Field(1)));
        assert_eq!(a, b);
        assert_ne!(a.0, c.0, "the byte above in the field");
        assert_eq!(a.1, c.1, "the field's own bytes");
        // Lines with different numbers of fields (code) keep the column.
        let (kinds_code, _) = after(b"f(a, b, c, d, e);\ng(a, b);\nh(a, b, c, d, e, f);\n");
        assert_eq!(kinds_code, (Kind::Column, Kind::Unigram));
    }

    #[test]
    fn bracketed_lists_key_on_the_pair_before() {
        let kinds = [Kind::Column, Kind::Unigram];
        let after = |data: &[u8]| {
            let orders = learned(&kinds, data);
            (orders.in_force(0).0, orders.context_hash(0, data))
        };
        // The second coordinate of a pair after two pairs: on one long line, so the
        // column context could not align it with the pair before.
        let (kind, a) = after(b"[[1,2],[-24.39,14.81],[-24.5,14.");
        let (_, b) = after(b"[[1,2],[-7.1,14.81],[-24.5,14.");
        let (_, c) = after(b"[[1,2],[-24.39,14.91],[-24.5,14.");
        assert_eq!(kind, Kind::Field(2));
        assert_eq!(a, b, "the same field above, at another column");
        assert_ne!(a, c, "another byte above in the field");
        let (kind, _) = after(b"[[-24.39,14.81],[-24.5,14.");
        assert_eq!(kind, Kind::Column, "one pair before is no list yet");
        let (kind, _) = after(b"[[-24.39,14.81],[-24.5,14.92],[-24.3,14.9]]");
        assert_eq!(kind, Kind::Column, "outside a row");
    }

    #[test]
    fn numbers_on_long_lines_key_on_their_place() {
        let kinds = [Kind::Column];
        let after = |data: &[u8]| {
            let orders = learned(&kinds, data);
            (orders.in_force(0).0, orders.context_hash(0, data))
        };
        let line = |path: &str| {
            let mut data = b"<path d=\"".repeat(30);
            data.extend_from_slice(path.as_bytes());
            data
        };
        // The third argument of `c`, two digits after its point: the same place.
        let (kind, a) = after(&line("M7.988 12.158c-1.851 0-2.94"));
        let (_, b) = after(&line("M3.1 45.678c-9.9 0-7.14"));
        let (_, c) = after(&line("M7.988 12.158c-1.851 0 2.94"));
        let (_, d) = after(&line("M7.988 12.158c-1.851-2.94"));
        assert_eq!(kind, Kind::Number);
        assert_eq!(a, b);
        assert_ne!(a, c, "another separator");
        assert_ne!(a, d, "another argument");
        // Short lines keep the column.
        let (kind, _) = after(b"M7.988 12.158c-1.851 0-2.94");
        assert_eq!(kind, Kind::Column);
    }

    #[test]
    fn numbers_are_aligned_with_the_number_two_before() {
        let kinds = [Kind::Sparse(0b110), Kind::Sparse(0b1101)];
        let after = |data: &[u8]| {
            let orders = learned(&kinds, data);
            (orders.in_force(1).0, orders.context_hash(1, data))
        };
        let points = "[-73.9851,40.7589],[-73.9857,40.7484],".repeat(8);
        // The third byte after the x's point: the x two numbers back (-73.9857) has `5`
        // there, the same beginning so far; that x was 6 more in its last place than the x
        // before it (-73.9851).
        let (kind, a) = after(format!("{points}[-73.98").as_bytes());
        // Other y's and earlier points, the same two x's: the same context.
        let (_, b) =
            after(format!("{}[-73.98", "[-73.9851,7.25],[-73.9857,40.7484],".repeat(8)).as_bytes());
        // Another beginning than the number two back; another step before it.
        let (_, c) = after(format!("{points}[-73.97").as_bytes());
        let (_, d) = after(
            format!(
                "{}[-73.98",
                "[-73.9957,40.7589],[-73.9857,40.7484],".repeat(8)
            )
            .as_bytes(),
        );
        assert_eq!(kind, Kind::Digits);
        assert_eq!(a, b);
        assert_ne!(a, c, "a beginning that differs");
        assert_ne!(a, d, "a step that differs");
        assert_eq!(departure(b"73.9857", b"73.9851"), (5, 6));
        assert_eq!(departure(b"73.98", b"73.9857"), (0, 5));
        assert_eq!(departure(b"73.97", b"73.9857"), (4, 4));
        assert_eq!(departure(b"73.9857", b"73.98"), (1, 5));
        assert_eq!(departure(b"7.25", b"73.9"), (2, 1));
        // A point that starts the next number (`1.5.5` is 1.5 and 0.5) ends the first.
        let mut n = Numbers::default();
        for &byte in b"1.5.5 " {
            n.update(byte);
        }
        assert_eq!(n.number(1), b".5");
        assert_eq!(n.number(2), b"1.5");
        // Prose with few digits keeps the line's context: order 5 on a line of prose.
        let (kind, _) = after(b"In 1492 Columbus sailed the ocean blue, and so on and on.");
        assert_eq!(kind, Kind::Order(5));
    }

    /// On text the second sparse slot keys on the line's indentation, but on order 5 on a
    /// line of prose that starts with a letter and no indentation, once the letter is read.
    #[test]
    fn the_indentation_slot_keys_on_order_5_on_a_line_of_prose() {
        let kinds = [Kind::Sparse(0b110), Kind::Sparse(0b1101)];
        let kind_after = |data: &[u8]| learned(&kinds, data).in_force(1).0;
        let prose =
            b"It was the best of times, it was the worst of times, it was the age\n".repeat(20);
        let with = |tail: &[u8]| [&prose[..], tail].concat();
        assert_eq!(kind_after(&with(b"It was the ep")), Kind::Order(5));
        assert_eq!(kind_after(&with(b"I")), Kind::Order(5));
        assert_eq!(
            kind_after(&with(b"")),
            Kind::Indent,
            "no byte of the line yet"
        );
        assert_eq!(
            kind_after(&with(b"  It was the ep")),
            Kind::Indent,
            "indented"
        );
        assert_eq!(
            kind_after(&with(b"\"It was the ep")),
            Kind::Indent,
            "a quote first"
        );
        let code = b"    if (x[i] > 0) { y += f(x[i], 2); }\n".repeat(20);
        let code = [&code[..], b"if (x[i] > 0) { y"].concat();
        assert_eq!(kind_after(&code), Kind::Indent, "code is not prose");
    }

    /// A binary "bitmap": rows of `width` bytes, each row the one above with a few bytes
    /// changed.
    pub(crate) fn bitmap(width: usize, rows: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut data: Vec<u8> = (0..width).map(|_| next() as u8 | 0x80).collect();
        for i in width..width * rows {
            let r = next();
            let above = data[i - width];
            data.push(if r % 16 == 0 {
                (r >> 8) as u8 | 0x80
            } else {
                above
            });
        }
        data
    }

    #[test]
    fn records_of_four_and_eight_bytes_read_as_numbers_in_their_byte_order() {
        let kinds = [Kind::Word];
        // A series whose steps change (the second difference does), as a signal's.
        let value = |i: u64| {
            0x4000_0000u64
                .wrapping_add(i * i * i / 4)
                .wrapping_sub(90 * i * i)
        };
        for (r, big) in [(4, true), (4, false), (8, true), (8, false)] {
            let bytes = |v: u64| -> Vec<u8> {
                let b = v.to_be_bytes()[8 - r..].to_vec();
                if big {
                    b
                } else {
                    b.into_iter().rev().collect()
                }
            };
            let data: Vec<u8> = (0..400).flat_map(|i| bytes(value(i))).collect();
            // Two bytes into record 300: the context holds the byte at place 2 of the
            // value records 299 and 298 extrapolate to, and how far place 1 was from its.
            let at = 300 * r + 2;
            let prefix = &data[..at];
            let orders = learned(&kinds, prefix);
            assert_eq!(orders.record_length(), Some(r));
            assert_eq!(orders.record.big_endian(), big, "{r} bytes");
            assert_eq!(orders.in_force(0).0, Kind::Record(RecordKey::Extrapolated));
            let predicted = bytes(value(299).wrapping_mul(2).wrapping_sub(value(298)));
            let missed = (i64::from(data[at - 1]) - i64::from(predicted[1])).clamp(-3, 3) + 3;
            let key = orders.record.extrapolated(prefix, 2);
            assert_eq!(
                key & 0xFF,
                u64::from(predicted[2]),
                "{r} bytes, big-endian {big}"
            );
            assert_eq!(key >> 8 & 15, missed as u64, "{r} bytes, big-endian {big}");
        }
        // Records whose values follow no series stay above and left.
        let data: Vec<u8> = noise(4000, 7)
            .chunks(4)
            .flat_map(|c| [0x10 << (c[0] & 1), c[1], c[2], c[3]])
            .collect();
        let orders = learned(&kinds, &data);
        assert_eq!(orders.record_length(), Some(4));
        assert_eq!(orders.in_force(0).0, Kind::Record(RecordKey::AboveLeft));
    }

    #[test]
    fn a_record_length_is_detected_and_the_word_slots_key_on_records() {
        let data = bitmap(37, 40);
        let kinds = [Kind::Word, Kind::Unigram];
        let mut orders = Orders::new(&kinds, 16, Surprise::UNIFORM_TEXT, true, false, false, true);
        let mut inputs = [[0i32; 16]; 256];
        for i in 0..data.len() {
            orders.predict_high(&mut inputs, 0);
            orders.update(&data[..=i], data[i]);
        }
        assert_eq!(orders.record.len, 37);
        assert_eq!(orders.in_force(0).0, Kind::Record(RecordKey::AboveLeft));
        assert_eq!(orders.in_force(1).0, Kind::Record(RecordKey::AboveTwice));
        // The context is the byte above and the byte before: other bytes do not change it.
        let n = data.len();
        let mut other = data.clone();
        other[n - 2] ^= 1;
        assert_eq!(
            orders.context_hash(0, &data),
            orders.context_hash(0, &other)
        );
        other[n - 37] ^= 1;
        assert_ne!(
            orders.context_hash(0, &data),
            orders.context_hash(0, &other)
        );
        orders.reset();
        assert_eq!(orders.record.len, 0);
        assert_eq!(orders.in_force(0).0, Kind::Word);
        // Without `records` (format versions before 5) the slots stay word contexts.
        let mut plain = Orders::new(
            &kinds,
            16,
            Surprise::UNIFORM_TEXT,
            false,
            false,
            false,
            true,
        );
        for i in 0..data.len() {
            plain.predict_high(&mut inputs, 0);
            plain.update(&data[..=i], data[i]);
        }
        assert_eq!(plain.record.len, 37);
        assert_eq!(plain.in_force(0).0, Kind::Word);
    }

    #[test]
    fn utf8_text_is_text_from_version_13() {
        let text = "Съешь же ещё этих мягких французских булок, да выпей чаю. 日本語の文章。\n";
        let data: Vec<u8> = text.bytes().cycle().take(5000).collect();
        let kinds = [
            Kind::Order(3),
            Kind::Sparse(0b110),
            Kind::BinaryShape,
            Kind::Line(0),
        ];
        // Version 13: the structure slot, as on any text; before, the bytes of the
        // multi-byte characters counted as binary data.
        let orders = learned(&kinds, &data);
        assert_eq!(orders.in_force(0).0, Kind::Order(3));
        assert_eq!(orders.in_force(1), (Kind::Nest, false));
        assert_eq!(orders.in_force(2), (Kind::Wrap, false));
        assert_eq!(orders.in_force(3), (Kind::Line(0), false));
        let orders = run(&kinds, &data);
        assert_eq!(orders.in_force(1), (Kind::Sparse(0b110), false));
        // Bytes that are not UTF-8 stay binary.
        let noise: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let orders = learned(&kinds, &noise);
        assert_eq!(orders.in_force(0).0, BINARY_SPARSE);
        assert_eq!(orders.in_force(1), (Kind::Sparse(0b110), false));
        assert_eq!(orders.in_force(2), (Kind::BinaryShape, false));
        assert_eq!(orders.in_force(3), (Kind::Line(1), false));
    }

    /// A model of the one slot `kind` after `bytes`: what the slot runs as, and the hash
    /// of its context.
    fn one_slot(kind: Kind, bytes: &[u8]) -> ((Kind, bool), u64) {
        let orders = learned(&[kind], bytes);
        (orders.in_force(0), orders.context_hash(0, bytes))
    }

    #[test]
    fn in_machine_code_the_instruction_contexts_key_on_the_offset_in_the_block() {
        let mut orders = Orders::new(
            &[Kind::Unigram],
            16,
            Surprise::SPLIT,
            true,
            true,
            true,
            true,
        );
        orders.set_code();
        let key = |o: &Orders, len: usize| o.context_key(0, Kind::Code(1), &vec![0x90; len]);
        let at_5 = key(&orders, 5);
        assert_eq!(key(&orders, 21), at_5);
        assert_ne!(key(&orders, 6), at_5);
        // Offsets count from the block's first byte, after the primer's.
        orders.start_block(3);
        assert_eq!(key(&orders, 8), at_5);
        assert_ne!(key(&orders, 5), at_5);
        // At a jump target's second byte the column slot keys on bits 8-15 of the offset.
        let mut jump = X86::default();
        for b in [0xE9, 0x00] {
            jump.update(b);
        }
        orders.code = Some(jump);
        let key = |o: &Orders, len: usize| o.context_key(0, Kind::Code(0), &vec![0x90; len]);
        let near = key(&orders, 3 + 0x1234);
        assert_eq!(key(&orders, 3 + 0x1299), near);
        assert_ne!(key(&orders, 3 + 0x1334), near);
    }

    #[test]
    fn the_shape_context_keys_on_classes_not_words() {
        let shape = |text: &[u8]| one_slot(Kind::Shape, text).1;
        // Other words, numbers and a longer name of one shape: one context.
        let a = shape(b"  let x = foo(1);\n x");
        assert_eq!(a, shape(b"y = total(7);\n z"));
        // Another bracket, or an upper-case letter, is another shape.
        assert_ne!(a, shape(b"  let x = foo[1];\n x"));
        assert_ne!(a, shape(b"  let x = Fo(1);\n x"));
    }

    #[test]
    fn the_line_context_keys_on_the_line_shape_so_far() {
        let line = |text: &[u8]| one_slot(Kind::Line(0), text).1;
        // What came before the line does not count; its words and numbers do not either.
        let a = line(b"fn main() {\n    let ab = 12");
        assert_eq!(a, line(b"x\n    var cd = 34"));
        assert_ne!(a, line(b"x\n    var cd = (34"));
        assert_ne!(a, line(b"x\n    var cd == 34"));
    }

    /// A character of three UTF-8 bytes is a word of its own (Japanese and Chinese put no
    /// spaces between words); a Cyrillic or Latin word is still whole.
    #[test]
    fn a_character_of_three_utf8_bytes_is_a_word() {
        let unigram = |text: &str| {
            let (runs_as, hash) = one_slot(Kind::Unigram, text.as_bytes());
            assert_eq!(runs_as, (Kind::Unigram, false));
            hash
        };
        assert_eq!(unigram("日本語"), unigram("英語"));
        assert_ne!(unigram("日本語"), unigram("日本人"));
        assert_ne!(unigram("кот"), unigram("от"));
        assert_ne!(unigram("the cat"), unigram("the at"));
    }

    /// Past column `LONG_LINE` the line, indentation and word-with-column contexts key on
    /// the last shapes and the nesting: not on a start of line thousands of bytes back, nor
    /// on the column.
    #[test]
    fn on_long_lines_the_line_contexts_key_on_shape_and_nesting() {
        let line = |start: &[u8], word: &[u8], n: usize| {
            let mut text = b"x\n".to_vec();
            text.extend_from_slice(start);
            for _ in 0..n {
                text.extend_from_slice(word);
            }
            text.extend_from_slice(b"(foo bar");
            text
        };
        for kind in [Kind::Line(0), Kind::Indent, Kind::WordColumn] {
            let hash = |text: &[u8]| {
                let (runs_as, hash) = one_slot(kind, text);
                assert_eq!(runs_as, (kind, false));
                hash
            };
            // Other indentation, first byte, words and column; the same shapes and brackets.
            let a = line(b"  {", b"word, ", 60);
            assert!(a.len() > LONG_LINE as usize + 10);
            assert_eq!(hash(&a), hash(&line(b"z {", b"words, ", 70)), "{kind:?}");
            // Other brackets open; for the line context, which keys on shapes alone, other
            // punctuation.
            let other = if kind == Kind::Line(0) {
                line(b"z {", b"words; ", 70)
            } else {
                line(b"z [", b"words, ", 70)
            };
            assert_ne!(hash(&a), hash(&other), "{kind:?}");
            // On a short line they differ.
            let short = hash(&line(b"  {", b"word, ", 3));
            assert_ne!(short, hash(&line(b"z {", b"words, ", 4)), "{kind:?}");
        }
    }

    #[test]
    fn the_binary_shape_context_keys_on_byte_classes() {
        let shape = |record: &[u8]| {
            // Binary data before the record, so the slot runs as the binary shape.
            let mut bytes: Vec<u8> = (0..64).map(|i| (i * 37) as u8 | 0x80).collect();
            bytes.extend_from_slice(record);
            let (runs_as, hash) = one_slot(Kind::BinaryShape, &bytes);
            assert_eq!(runs_as, (Kind::BinaryShape, false));
            hash
        };
        // Two records of one layout, other values.
        let a = shape(&[9, 9, 0x41, 0, 0, 0x13, 0xFF, 0x80, 0x00, 0xC4]);
        assert_eq!(a, shape(&[0x42, 0, 0, 0x17, 0xFF, 0xB0, 0x00, 0xF0]));
        // A zero where a control byte was is another layout.
        assert_ne!(a, shape(&[0x42, 0, 0, 0x00, 0xFF, 0xB0, 0x00, 0xF0]));
    }

    /// The context hash of a binary shape slot after `text`, checking it runs as `kind`.
    fn binary_shape_slot_as(kind: Kind) -> impl Fn(&[u8]) -> u64 {
        move |text| {
            let (runs_as, hash) = one_slot(Kind::BinaryShape, text);
            assert_eq!(runs_as, (kind, false));
            hash
        }
    }

    #[test]
    fn on_text_the_binary_shape_slot_keys_on_coarse_classes() {
        let coarse = binary_shape_slot_as(Kind::Coarse);
        // Other words and numbers, other punctuation: one context over the last 32 bytes.
        let a = coarse(b"see [3] and then 12 more: call it, x");
        assert_eq!(a, coarse(b"xyz (7) not here 45 less; make up. q"));
        // A digit where a letter was, or a word one letter longer, is another.
        assert_ne!(a, coarse(b"see [3] and then 12 more: call 1t, x"));
        assert_ne!(a, coarse(b"see [3] and then 12 more: call its, x"));
    }

    #[test]
    fn on_prose_the_binary_shape_slot_keys_on_where_lines_wrap() {
        let wrap = binary_shape_slot_as(Kind::Wrap);
        // Prose, with fewer digits and punctuation: the column, the last byte's class and
        // the previous line's length, whatever the words.
        let a = wrap(b"Alice was beginning to get very\ntired of sitting by her sister");
        assert_eq!(
            a,
            wrap(b"Rabbit was hurrying on to get my\nbook of waiting on the sliders")
        );
        // One column on, a space for the letter, or a longer line before: others.
        assert_ne!(
            a,
            wrap(b"Alice was beginning to get very\ntired of sitting by her sisters")
        );
        assert_ne!(
            a,
            wrap(b"Alice was beginning to get very\ntired of sitting by her siste ")
        );
        let longer = b"Alice was beginning to get very tired of it\ntired of sitting by her sister";
        assert_ne!(a, wrap(longer));
    }

    #[test]
    fn text_keeps_its_word_contexts() {
        let text = b"Alice was beginning to get very tired of sitting by her sister on the bank. ";
        let data: Vec<u8> = text.iter().cycle().take(5000).copied().collect();
        let orders = run(&[Kind::Word, Kind::Unigram], &data);
        // Text repeats too (here every 76 bytes), but it is not binary.
        assert_eq!(orders.in_force(0).0, Kind::Word);
        assert_eq!(orders.in_force(1).0, Kind::Unigram);
    }

    /// A context may take any slot of its set: four in the grown layout, two before it. A
    /// new context displaces the slot whose first node has learned least, and the others
    /// stay found.
    #[test]
    fn a_new_context_displaces_the_least_trained_slot_of_its_set() {
        for (grows, ways) in [(true, 4usize), (false, 2)] {
            let mut orders = Orders::new(
                &[Kind::Order(1)],
                20,
                Surprise::UNIFORM_TEXT,
                true,
                true,
                grows,
                true,
            );
            // Contexts whose hashes differ only in check bits share a set.
            let base = mix(5, 9) & !(0xFFFF << 8);
            let contexts: Vec<u64> = (1..=ways as u64 + 1).map(|k| base | k << 12).collect();
            let places: Vec<(usize, u16)> = contexts.iter().map(|&h| orders.place(h)).collect();
            assert!(places.iter().all(|p| p.0 == places[0].0));
            let mut slots = Vec::new();
            for (n, &place) in places[..ways].iter().enumerate() {
                let s = orders.lookup_or_insert(place);
                // Each has learned more than the one before (an empty slot, less still).
                orders.table[s][1] = (2048 << 4) | (n as u16 + 1);
                slots.push(s);
            }
            slots.sort_unstable();
            slots.dedup();
            assert_eq!(slots, (places[0].0..places[0].0 + ways).collect::<Vec<_>>());
            assert!(places[..ways].iter().all(|&p| orders.lookup(p).is_some()));
            // The next one takes the first context's slot.
            let first = orders.lookup(places[0]);
            assert_eq!(Some(orders.lookup_or_insert(places[ways]) as u32), first);
            assert_eq!(orders.lookup(places[0]), None);
            assert!(places[1..].iter().all(|&p| orders.lookup(p).is_some()));
        }
    }

    /// A grown table holds every slot where a context with its check looks for it, high
    /// and low, with the counters it had: from each size it may grow from to each larger.
    #[test]
    fn a_grown_table_finds_every_slot_it_held() {
        let contexts: Vec<u64> = (1..=30_000u64).map(|i| mix(i, 77)).collect();
        for (from, to) in [(20, 21), (20, 22), (21, 22)] {
            let mut orders = Orders::new(
                &[Kind::Order(1)],
                from,
                Surprise::UNIFORM_TEXT,
                true,
                true,
                true,
                true,
            );
            let mut held = Vec::new();
            for (i, &hash) in contexts.iter().enumerate() {
                let nibble = i % 16;
                for place in [orders.place(hash), orders.place_low(hash, nibble)] {
                    let s = orders.lookup_or_insert(place);
                    orders.table[s][1..].fill(i as u16 * 16 + 1);
                }
            }
            // What the small table still holds (contexts of a slot set may push out others).
            for (i, &hash) in contexts.iter().enumerate() {
                let nibble = i % 16;
                for (low, place) in [
                    (false, orders.place(hash)),
                    (true, orders.place_low(hash, nibble)),
                ] {
                    if let Some(s) = orders.lookup(place) {
                        held.push((hash, low.then_some(nibble), orders.table[s as usize]));
                    }
                }
            }
            assert!(held.len() > 50_000, "{} of 60,000 held", held.len());
            orders.grow(to);
            assert_eq!(orders.bits, to);
            for (hash, low, slot) in held {
                let place = match low {
                    None => orders.place(hash),
                    Some(nibble) => orders.place_low(hash, nibble),
                };
                let s = orders.lookup(place).expect("a held slot is found") as usize;
                assert_eq!(orders.table[s], slot, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn a_reset_forgets_the_map() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 13) as u8 + b'a').collect();
        let mut orders = run(&[Kind::Order(1), Kind::Word], &data);
        let fresh = Orders::new(
            &[Kind::Order(1), Kind::Word],
            16,
            Surprise::UNIFORM_TEXT,
            true,
            false,
            false,
            true,
        );
        assert_ne!(orders.adapt, fresh.adapt);
        orders.reset();
        assert_eq!(orders.adapt, fresh.adapt);
    }
}
