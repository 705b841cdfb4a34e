//! Where the next byte sits in an x86-64 instruction: an instruction-length decoder run
//! over the bytes as they are coded, for the contexts of machine code ([`Kind::Code`]
//! in `orders`). The exe models of paq8 parse instructions the same way; this one follows
//! the encoding tables of the Intel SDM (volume 2, appendix A), not their code.
//!
//! A byte is either part of an instruction's opcode (prefixes, escapes, VEX/EVEX payload,
//! the opcode itself), its ModRM or SIB byte, or a displacement or immediate byte. Data
//! parses as garbage instructions, and x86 resynchronises within a few instructions after
//! it, so the decoder needs no detection; which bytes are modelled as code is judged by
//! [`Calls`], over the bytes themselves.
//!
//! [`Kind::Code`]: super::orders::Kind::Code

use crate::filter::{filterable, CALL, DENSITY};
use crate::snapshot::{Snapshot, Walker};

/// What the next byte of the instruction stream is, in the order the fields come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Default)]
pub(crate) enum Field {
    /// The first byte of an instruction, or a byte after its prefixes.
    #[default]
    Start,
    /// After `0F`, `0F 38` or `0F 3A`, or a VEX/EVEX payload: the opcode of that map.
    Escape,
    /// A VEX or EVEX payload byte.
    Vex,
    ModRm,
    Sib,
    /// A displacement byte.
    Disp,
    /// An immediate (or relative target, or absolute address) byte.
    Imm,
}

/// The decoder's state after the bytes so far.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct X86 {
    pub(crate) field: Field,
    /// Bytes of the current field already seen (displacement and immediate).
    pub(crate) index: u8,
    /// The opcode being decoded: its map (0: one byte, 1: `0F`, 2: `0F 38`, 3: `0F 3A`)
    /// in bits 8-9, the byte in 0-7; bit 10 once known.
    pub(crate) op: u16,
    /// Prefixes seen: bit 0 `66`, 1 `67`, 2 `F2`, 3 `F3`, 4 REX.W, 5 any REX, 6 VEX/EVEX.
    pub(crate) prefixes: u8,
    pub(crate) modrm: u8,
    /// The opcodes of the last four instructions (as `op`), the latest first.
    pub(crate) prev: [u16; 4],
    /// The last instruction's ModRM byte (0 where it had none) and length (saturating).
    prev_modrm: u8,
    prev_len: u8,
    /// Bytes of the current instruction so far, prefixes included (saturating).
    pub(crate) len: u8,
    /// The current instruction's displacement and immediate bytes so far, the latest in
    /// the low byte.
    operand: u64,
    /// The instruction the last byte completed, if it did: its [`X86::key`] and operand
    /// bytes (for the operand history, [`Kind::Code`] variant 4).
    ///
    /// [`Kind::Code`]: super::orders::Kind::Code
    pub(crate) completed: Option<(u64, u64)>,
    disp: u8,
    imm: u8,
    /// VEX/EVEX payload bytes still to come, and the map they name.
    vex_left: u8,
    vex_map: u16,
}

const KNOWN: u16 = 1 << 10;

/// Whether the recent bytes are machine code, judged as the x86 filter judges a block
/// (`filter::worth_filtering`) but over the last few KiB: by how often a `CALL rel32` with
/// a near target (`E8`, then an operand whose top byte is `00` or `FF`) has come. An
/// executable's code sections hold one every 20-160 bytes; its other sections (symbols,
/// relocations, unwind tables, strings) are modelled better as data, and hold one per KiB
/// or fewer. Code starts where they come at least once per [`DENSITY`] bytes and ends
/// where they come less than once per `4 * DENSITY`, so a stretch of code with few calls
/// stays code (`docs/tuning.md`, "Code within executables").
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Calls {
    /// Calls seen, each [`Calls::UNIT`], decaying by `2^-HORIZON_BITS` a byte.
    level: u32,
    /// The bytes are code.
    pub(crate) code: bool,
}

impl Calls {
    const UNIT: u32 = 1 << 16;
    const HORIZON_BITS: u32 = 12;
    /// The level of one call per `bytes` bytes, held steady.
    const fn level_of(bytes: usize) -> u32 {
        (Calls::UNIT << Calls::HORIZON_BITS) / bytes as u32
    }

    /// Takes the next byte; `history` holds the last 8 bytes, this one in the low byte.
    pub(crate) fn update(&mut self, history: u64) {
        self.level -= self.level >> Calls::HORIZON_BITS;
        if (history >> 32) as u8 == CALL && filterable(history as u8) {
            self.level += Calls::UNIT;
        }
        if self.level >= Calls::level_of(DENSITY) {
            self.code = true;
        } else if self.level < Calls::level_of(4 * DENSITY) {
            self.code = false;
        }
    }
}

impl X86 {
    /// Takes the next byte of the stream.
    pub(crate) fn update(&mut self, byte: u8) {
        self.completed = None;
        self.len = self.len.saturating_add(1);
        if matches!(self.field, Field::Disp | Field::Imm) {
            self.operand = (self.operand << 8) | u64::from(byte);
        }
        match self.field {
            Field::Start => self.start(byte),
            Field::Escape => {
                let map = self.op >> 8 & 3;
                if map == 1 && (byte == 0x38 || byte == 0x3A) && self.prefixes & 64 == 0 {
                    self.op = if byte == 0x38 { 2 << 8 } else { 3 << 8 };
                    return;
                }
                self.opcode((map << 8) | u16::from(byte));
            }
            Field::Vex => {
                let kind = self.op >> 11;
                if (kind, self.vex_left) == (1, 3) || (kind, self.vex_left) == (2, 2) {
                    // The first payload byte of an EVEX or a three-byte VEX names the map.
                    self.vex_map = u16::from(byte & 3).max(1);
                }
                self.vex_left -= 1;
                if self.vex_left == 0 {
                    self.op = self.vex_map << 8;
                    self.field = Field::Escape;
                }
            }
            Field::ModRm => {
                self.modrm = byte;
                let (md, rm) = (byte >> 6, byte & 7);
                if self.op == KNOWN | 0xF6 || self.op == KNOWN | 0xF7 {
                    // TEST has an immediate; the other group-3 ops have none.
                    if byte >> 3 & 7 > 1 {
                        self.imm = 0;
                    }
                }
                self.disp = match md {
                    0 if rm == 5 => 4,
                    1 => 1,
                    2 => 4,
                    _ => 0,
                };
                if md != 3 && rm == 4 {
                    self.field = Field::Sib;
                } else {
                    self.operands();
                }
            }
            Field::Sib => {
                if self.modrm >> 6 == 0 && byte & 7 == 5 {
                    self.disp = 4;
                }
                self.operands();
            }
            Field::Disp | Field::Imm => {
                self.index += 1;
                self.operands();
            }
        }
    }

    fn start(&mut self, byte: u8) {
        match byte {
            0x66 => self.prefixes |= 1,
            0x67 => self.prefixes |= 2,
            0xF2 => self.prefixes |= 4,
            0xF3 => self.prefixes |= 8,
            0xF0 | 0x26 | 0x2E | 0x36 | 0x3E | 0x64 | 0x65 => {}
            0x40..=0x4F => self.prefixes |= 32 | (byte & 8) << 1,
            0x0F => {
                self.op = 1 << 8;
                self.field = Field::Escape;
            }
            0xC4 | 0xC5 | 0x62 => {
                // Three-byte VEX (2 payload bytes), two-byte VEX (1), EVEX (3).
                let (left, kind) = match byte {
                    0xC4 => (2, 2),
                    0xC5 => (1, 3),
                    _ => (3, 1),
                };
                self.prefixes |= 64;
                self.vex_left = left;
                self.vex_map = 1;
                self.op = kind << 11;
                self.field = Field::Vex;
            }
            _ => self.opcode(u16::from(byte)),
        }
    }

    /// The opcode `op` (map in bits 8-9) is known: what follows it.
    fn opcode(&mut self, op: u16) {
        let vex = self.prefixes & 64 != 0;
        self.op = KNOWN | op;
        let b = op as u8;
        let z = if self.prefixes & 1 != 0 { 2 } else { 4 };
        let (modrm, imm) = match op >> 8 {
            0 => match b {
                0x00..=0x3F => match b & 7 {
                    0..=3 => (true, 0),
                    4 => (false, 1),
                    5 => (false, z),
                    _ => (false, 0),
                },
                0x63 | 0x84..=0x8F | 0xD0..=0xD3 | 0xD8..=0xDF | 0xFE | 0xFF => (true, 0),
                0x69 | 0x81 | 0xC7 => (true, z),
                0x6B | 0x80 | 0x83 | 0xC0 | 0xC1 | 0xC6 => (true, 1),
                0xF6 => (true, 1),
                0xF7 => (true, z),
                0x68 | 0xA9 | 0xE8 | 0xE9 => (false, z),
                0x6A | 0x70..=0x7F | 0xA8 | 0xB0..=0xB7 | 0xCD | 0xE0..=0xE7 | 0xEB => (false, 1),
                0xB8..=0xBF => (false, if self.prefixes & 16 != 0 { 8 } else { z }),
                0xA0..=0xA3 => (false, if self.prefixes & 2 != 0 { 4 } else { 8 }),
                0xC2 | 0xCA => (false, 2),
                0xC8 => (false, 3),
                _ => (false, 0),
            },
            1 => match b {
                0x80..=0x8F => (false, 4),
                0x05..=0x09 | 0x0B | 0x0E | 0x30..=0x37 | 0xA0..=0xA2 | 0xA8..=0xAA => (false, 0),
                0x77 => (false, 0),
                0xC8..=0xCF if !vex => (false, 0),
                0x70..=0x73 | 0xA4 | 0xAC | 0xBA | 0xC2 | 0xC4..=0xC6 | 0x0F => (true, 1),
                _ => (true, 0),
            },
            2 => (true, 0),
            _ => (true, 1),
        };
        self.imm = imm;
        self.disp = 0;
        self.modrm = 0;
        self.index = 0;
        if modrm {
            self.field = Field::ModRm;
        } else {
            self.operands();
        }
    }

    /// Moves to the next displacement or immediate byte, or to the next instruction.
    fn operands(&mut self) {
        for (field, len) in [(Field::Disp, self.disp), (Field::Imm, self.imm)] {
            if self.field == field && self.index < len {
                return;
            }
            if self.field < field && len > 0 {
                (self.field, self.index) = (field, 0);
                return;
            }
        }
        let completed = Some((self.key(), self.operand));
        let prev = [self.op, self.prev[0], self.prev[1], self.prev[2]];
        *self = X86 {
            prev,
            prev_modrm: self.modrm,
            prev_len: self.len,
            completed,
            ..X86::default()
        };
    }

    /// The context of the next byte: the field it is in and what decides it — the last
    /// two opcodes, the last instruction's length (to 15) and its ModRM's mod bits before
    /// an instruction, the opcode (and prefixes) with the last instruction's opcode and
    /// ModRM before its ModRM (registers and addressing run on from one instruction to the
    /// next), the opcode and ModRM in its operands, a branch's kind of target in its
    /// target.
    pub(crate) fn context(&self) -> u64 {
        let op = self.op_prefixes();
        let at = self.at();
        match (self.field, self.target()) {
            (Field::Start | Field::Escape | Field::Vex, _) => {
                let last = u64::from(self.prev_len.min(15)) | u64::from(self.prev_modrm >> 6) << 4;
                at | op << 8
                    | u64::from(self.prev[0]) << 28
                    | u64::from(self.prev[1]) << 44
                    | last << 56
            }
            (Field::ModRm, _) => {
                at | op << 8 | u64::from(self.prev[0]) << 28 | u64::from(self.prev_modrm) << 44
            }
            (Field::Imm, Some(kind)) => at | kind << 8,
            (Field::Sib | Field::Disp | Field::Imm, _) => {
                at | op << 8 | u64::from(self.modrm) << 28
            }
        }
    }

    /// For a branch, which kind of target its operand is: a function's entry (1, `CALL
    /// rel32`), a place in one (2, `JMP rel32`, `Jcc rel32`; through the filter the operand
    /// is the target itself, alike whichever branch leads there), or a place nearby (3, the
    /// 8-bit displacement of a short `JMP` or `Jcc`).
    fn target(&self) -> Option<u64> {
        match self.op & !KNOWN {
            0xE8 => Some(1),
            0xE9 | 0x180..=0x18F => Some(2),
            0x70..=0x7F | 0xEB => Some(3),
            _ => None,
        }
    }

    /// Where the next byte is: its field and its index in the field.
    pub(crate) fn at(&self) -> u64 {
        self.field as u64 | u64::from(self.index) << 3
    }

    /// The opcode (as `op`) with the prefixes above it.
    pub(crate) fn op_prefixes(&self) -> u64 {
        u64::from(self.op) | u64::from(self.prefixes) << 12
    }

    /// What the operands of instructions alike follow: the opcode, the prefixes and the
    /// ModRM's addressing (mod and r/m; the register field left out); for a branch, the
    /// kind of its target ([`X86::target`]).
    pub(crate) fn key(&self) -> u64 {
        match self.target() {
            Some(kind) => kind | 1 << 40,
            None => self.op_prefixes() | u64::from(self.modrm & 0xC7) << 20,
        }
    }

    /// At the second byte of a `JMP` or `Jcc rel32` target (through the filter the target's
    /// bits 8-15): a near jump's target shares them with the jump's own place.
    pub(crate) fn in_near_target(&self) -> bool {
        self.field == Field::Imm && self.index == 1 && self.target() == Some(2)
    }

    /// In a displacement or immediate.
    pub(crate) fn in_operand(&self) -> bool {
        matches!(self.field, Field::Disp | Field::Imm)
    }
}

impl Snapshot for Field {
    fn walk(&mut self, w: &mut Walker<'_>) {
        const ALL: [Field; 7] = [
            Field::Start,
            Field::Escape,
            Field::Vex,
            Field::ModRm,
            Field::Sib,
            Field::Disp,
            Field::Imm,
        ];
        let mut i = ALL.iter().position(|f| f == self).unwrap_or(0) as u8;
        i.walk(w);
        match ALL.get(usize::from(i)) {
            Some(&f) => *self = f,
            None => w.fail(),
        }
    }
}

impl Snapshot for X86 {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let X86 {
            field,
            index,
            op,
            prefixes,
            modrm,
            prev,
            prev_modrm,
            prev_len,
            len,
            operand,
            completed,
            disp,
            imm,
            vex_left,
            vex_map,
        } = self;
        field.walk(w);
        index.walk(w);
        op.walk(w);
        prefixes.walk(w);
        modrm.walk(w);
        prev.walk(w);
        prev_modrm.walk(w);
        prev_len.walk(w);
        len.walk(w);
        operand.walk(w);
        completed.walk(w);
        disp.walk(w);
        imm.walk(w);
        vex_left.walk(w);
        vex_map.walk(w);
    }
}

impl Snapshot for Calls {
    fn walk(&mut self, w: &mut Walker<'_>) {
        let Calls { level, code } = self;
        level.walk(w);
        code.walk(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instruction lengths the decoder finds in `code`.
    fn lengths(code: &[u8]) -> Vec<usize> {
        let mut x = X86::default();
        let mut out = Vec::new();
        let mut len = 0;
        for &b in code {
            x.update(b);
            len += 1;
            if x.field == Field::Start && x.prefixes == 0 {
                out.push(len);
                len = 0;
            }
        }
        out
    }

    #[test]
    fn a_completed_instruction_reports_its_key_and_operand() {
        let mut x = X86::default();
        let mut completed = Vec::new();
        // mov eax, [rbp-4]; mov rax, [rip+0x04030201]; push rbp; add eax, 0x11223344
        let code = [
            0x8B, 0x45, 0xFC, 0x48, 0x8B, 0x05, 1, 2, 3, 4, 0x55, 0x05, 0x44, 0x33, 0x22, 0x11,
        ];
        for &b in &code {
            x.update(b);
            assert_eq!(x.len == 0, x.completed.is_some());
            completed.extend(x.completed);
        }
        let key = |op: u16, prefixes: u64, modrm: u64| {
            u64::from(KNOWN | op) | prefixes << 12 | modrm << 20
        };
        assert_eq!(
            completed,
            [
                (key(0x8B, 0, 0x45), 0xFC),
                (key(0x8B, 48, 0x05), 0x0102_0304),
                (key(0x55, 0, 0), 0),
                (key(0x05, 0, 0), 0x4433_2211),
            ]
        );
        assert_eq!(x.prev, [0x05, 0x55, 0x8B, 0x8B].map(|op| KNOWN | op));
    }

    #[test]
    fn instruction_lengths_follow_the_encoding() {
        let code = [
            0x55, // push rbp
            0x48, 0x89, 0xE5, // mov rbp, rsp
            0x48, 0x83, 0xEC, 0x20, // sub rsp, 32
            0x8B, 0x45, 0xFC, // mov eax, [rbp-4]
            0x48, 0x8B, 0x05, 1, 2, 3, 4, // mov rax, [rip+disp32]
            0x8B, 0x04, 0x24, // mov eax, [rsp]
            0x8B, 0x44, 0x24, 8, // mov eax, [rsp+8]
            0x8B, 0x04, 0x25, 1, 2, 3, 4, // mov eax, [disp32] (SIB, no base)
            0xE8, 1, 2, 3, 4, // call rel32
            0x66, 0x0F, 0x1F, 0x44, 0, 0, // nop word [rax+rax]
            0x0F, 0x84, 1, 2, 3, 4, // je rel32
            0x48, 0xB8, 1, 2, 3, 4, 5, 6, 7, 8, // mov rax, imm64
            0xF6, 0xC1, 1, // test cl, 1
            0xF7, 0xD8, // neg eax
            0x66, 0x0F, 0x3A, 0x0F, 0xC1, 8, // palignr xmm0, xmm1, 8
            0xC5, 0xF8, 0x77, // vzeroupper
            0xC4, 0xE2, 0x79, 0x18, 0x06, // vbroadcastss xmm0, [rsi]
            0xC3, // ret
        ];
        assert_eq!(
            lengths(&code),
            [1, 3, 4, 3, 7, 3, 4, 7, 5, 6, 6, 10, 3, 2, 6, 3, 5, 1]
        );
    }

    #[test]
    fn branch_targets_share_a_context_by_kind() {
        // The context of a branch's first target byte: `JE`, `JNE` and `JMP` alike, `CALL`
        // apart.
        let first_target_byte = |code: &[u8]| {
            let mut x = X86::default();
            for &b in code {
                x.update(b);
            }
            assert_eq!((x.field, x.index), (Field::Imm, 0));
            (x.context(), x.key())
        };
        let je = first_target_byte(&[0x0F, 0x84]);
        assert_eq!(first_target_byte(&[0x0F, 0x85]), je);
        assert_eq!(first_target_byte(&[0xE9]), je);
        assert_ne!(first_target_byte(&[0xE8]), je);
        // A jump target's second byte is where a near target shares the jump's place.
        let near = |code: &[u8]| {
            let mut x = X86::default();
            for &b in code {
                x.update(b);
            }
            x.in_near_target()
        };
        assert!(near(&[0x0F, 0x84, 0x00]) && near(&[0xE9, 0x00]));
        assert!(!near(&[0xE9]) && !near(&[0xE9, 0x00, 0x00]) && !near(&[0xE8, 0x00]));
        // Short branches' displacements share one kind of their own.
        let short = first_target_byte(&[0x74]);
        assert_eq!(first_target_byte(&[0xEB]), short);
        assert_ne!(short, je);
        // Other immediates keep their opcode.
        assert_ne!(first_target_byte(&[0x68]), first_target_byte(&[0x05]));
    }

    #[test]
    fn the_context_says_where_the_byte_is() {
        let mut x = X86::default();
        for b in [0x48, 0x8B] {
            x.update(b);
        }
        assert_eq!(x.field, Field::ModRm);
        x.update(0x05);
        assert_eq!((x.field, x.index), (Field::Disp, 0));
        let disp = x.context();
        x.update(1);
        assert_eq!((x.field, x.index), (Field::Disp, 1));
        assert_ne!(x.context(), disp);
        for b in [2, 3, 4] {
            x.update(b);
        }
        assert_eq!(x.field, Field::Start);
        assert_eq!(x.prev[0], KNOWN | 0x8B);
        // The next ModRM's context knows the last one: `mov eax, [rip+..]` then `mov`
        // with a ModRM differs from `mov ecx, [rbp-4]` then the same.
        let after = |first: &[u8]| {
            let mut x = X86::default();
            for &b in first.iter().chain(&[0x8B]) {
                x.update(b);
            }
            assert_eq!(x.field, Field::ModRm);
            x.context()
        };
        assert_ne!(after(&[0x8B, 0x05, 1, 2, 3, 4]), after(&[0x8B, 0x4D, 0xFC]));
        assert_eq!(after(&[0x8B, 0x4D, 0xFC]), after(&[0x8B, 0x4D, 0x08]));
        // An instruction's start knows the last one's length and addressing mode: `mov
        // eax, ecx` and `mov eax, [rbp-4]` lead to different contexts.
        let start_after = |first: &[u8]| {
            let mut x = X86::default();
            for &b in first {
                x.update(b);
            }
            assert_eq!(x.field, Field::Start);
            x.context()
        };
        assert_ne!(start_after(&[0x8B, 0xC1]), start_after(&[0x8B, 0x45, 0xFC]));
    }

    /// Bytes with a near `CALL` every `every` bytes (none for 0), the rest noise without
    /// `E8`.
    fn stretch_with_calls(len: usize, every: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x as u8).min(0xE7)
            })
            .collect();
        if every > 0 {
            for i in (0..len.saturating_sub(5)).step_by(every) {
                bytes[i] = CALL;
                bytes[i + 4] = if i % 2 == 0 { 0x00 } else { 0xFF };
            }
        }
        bytes
    }

    /// Whether `Calls` says code after each byte of `bytes`.
    fn judged(bytes: &[u8]) -> Vec<bool> {
        let (mut calls, mut history) = (Calls::default(), 0u64);
        bytes
            .iter()
            .map(|&b| {
                history = history << 8 | u64::from(b);
                calls.update(history);
                calls.code
            })
            .collect()
    }

    #[test]
    fn calls_mark_where_the_code_is() {
        const K: usize = 1 << 10;
        // Data, code (a call every 64 bytes), code with fewer calls (every 600), data
        // without calls, and relocation-like data (a call pattern every 600 bytes).
        let parts = [(0, 0), (64, 1), (600, 2), (0, 3), (600, 4)];
        let bytes: Vec<u8> = parts
            .iter()
            .flat_map(|&(every, seed)| stretch_with_calls(16 * K, every, seed))
            .collect();
        let code = judged(&bytes);
        let part = |i: usize| &code[i * 16 * K..(i + 1) * 16 * K];
        assert!(part(0).iter().all(|&c| !c), "data is not code");
        assert!(!part(1)[0], "code starts as data");
        assert!(part(1)[2 * K..].iter().all(|&c| c), "code within 2 KiB");
        assert!(part(2).iter().all(|&c| c), "sparser calls stay code");
        assert!(
            part(3)[8 * K..].iter().all(|&c| !c),
            "data again within 8 KiB"
        );
        assert!(
            part(4).iter().all(|&c| !c),
            "sparse calls in data start no code"
        );
    }
}
