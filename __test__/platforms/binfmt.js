'use strict'
// Small readers of the three executable formats the platform packages
// carry (ELF, PE, Mach-O), in plain Node so the platform suite needs no
// binutils and runs the same on every CI runner. Each returns only what the
// suite checks: the CPU, the kind of file, whether it is stripped, the
// libraries it needs, the symbols it exports, and per format: ELF's
// interpreter and GLIBC_ versions, PE's subsystem, Mach-O's minimum macOS
// and its code signature's page hashes.
const crypto = require('node:crypto')
const fs = require('node:fs')

function cstr(buf, off) {
  let end = off
  while (end < buf.length && buf[end] !== 0) end++
  return buf.toString('latin1', off, end)
}

/** The format of a file from its first bytes: 'elf', 'pe', 'macho' or null. */
function formatOf(buf) {
  if (buf.length >= 4 && buf.readUInt32BE(0) === 0x7f454c46) return 'elf'
  if (buf.length >= 2 && buf.toString('latin1', 0, 2) === 'MZ') return 'pe'
  if (buf.length >= 4 && buf.readUInt32LE(0) === 0xfeedfacf) return 'macho'
  return null
}

// ---- ELF (64-bit little-endian) --------------------------------------------

const EM = { 0x3e: 'x64', 0xb7: 'arm64' }

function elf(buf) {
  if (formatOf(buf) !== 'elf') throw new Error('not an ELF file')
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error('not a 64-bit little-endian ELF file')
  const type = { 2: 'exec', 3: 'dyn' }[buf.readUInt16LE(16)] || `type ${buf.readUInt16LE(16)}`
  const machine = buf.readUInt16LE(18)
  const phoff = Number(buf.readBigUInt64LE(32))
  const shoff = Number(buf.readBigUInt64LE(40))
  const phentsize = buf.readUInt16LE(54)
  const phnum = buf.readUInt16LE(56)
  const shentsize = buf.readUInt16LE(58)
  const shnum = buf.readUInt16LE(60)
  const shstrndx = buf.readUInt16LE(62)

  let interpreter = null
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize
    if (buf.readUInt32LE(p) === 3) {
      const off = Number(buf.readBigUInt64LE(p + 8))
      interpreter = cstr(buf, off)
    }
  }

  const sections = []
  for (let i = 0; i < shnum; i++) {
    const s = shoff + i * shentsize
    sections.push({
      nameOff: buf.readUInt32LE(s),
      type: buf.readUInt32LE(s + 4),
      offset: Number(buf.readBigUInt64LE(s + 24)),
      size: Number(buf.readBigUInt64LE(s + 32)),
      link: buf.readUInt32LE(s + 40),
      info: buf.readUInt32LE(s + 44),
      entsize: Number(buf.readBigUInt64LE(s + 56)),
    })
  }
  const shstr = sections[shstrndx]
  for (const s of sections) s.name = shstr ? cstr(buf, shstr.offset + s.nameOff) : ''

  const needed = []
  const exports = []
  const versions = new Set()
  for (const s of sections) {
    const strtab = sections[s.link]
    if (s.type === 6) {
      // SHT_DYNAMIC: DT_NEEDED entries name the libraries.
      for (let o = s.offset; o < s.offset + s.size; o += 16) {
        const tag = buf.readBigInt64LE(o)
        if (tag === 0n) break
        if (tag === 1n) needed.push(cstr(buf, strtab.offset + Number(buf.readBigUInt64LE(o + 8))))
      }
    } else if (s.type === 11) {
      // SHT_DYNSYM: the defined global symbols are the exports.
      for (let o = s.offset + 24; o < s.offset + s.size; o += 24) {
        const info = buf[o + 4]
        const shndx = buf.readUInt16LE(o + 6)
        const bind = info >> 4
        if (shndx !== 0 && (bind === 1 || bind === 2)) exports.push(cstr(buf, strtab.offset + buf.readUInt32LE(o)))
      }
    } else if (s.type === 0x6ffffffe) {
      // SHT_GNU_verneed: the symbol versions needed from each library.
      let o = s.offset
      for (let i = 0; i < s.info; i++) {
        const cnt = buf.readUInt16LE(o + 2)
        let a = o + buf.readUInt32LE(o + 8)
        for (let j = 0; j < cnt; j++) {
          versions.add(cstr(buf, strtab.offset + buf.readUInt32LE(a + 8)))
          a += buf.readUInt32LE(a + 12)
        }
        const next = buf.readUInt32LE(o + 12)
        if (!next) break
        o += next
      }
    }
  }
  return {
    format: 'elf',
    cpu: EM[machine] || `machine ${machine}`,
    type,
    interpreter,
    needed,
    exports,
    versions: [...versions],
    stripped: !sections.some((s) => s.type === 2),
    debug: sections.some((s) => s.name.startsWith('.debug_')),
  }
}

/** The highest GLIBC_x.y among symbol versions, as [x, y], or null. */
function maxGlibc(versions) {
  let best = null
  for (const v of versions) {
    const m = /^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$/.exec(v)
    if (!m) continue
    const n = [Number(m[1]), Number(m[2]), Number(m[3] || 0)]
    if (!best || compare(n, best) > 0) best = n
  }
  return best
}

function compare(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] || 0) - (b[i] || 0)
    if (d) return d
  }
  return 0
}

// ---- PE (PE32+) ------------------------------------------------------------

function pe(buf) {
  if (formatOf(buf) !== 'pe') throw new Error('not a PE file')
  const peOff = buf.readUInt32LE(0x3c)
  if (buf.readUInt32LE(peOff) !== 0x00004550) throw new Error('no PE signature')
  const coff = peOff + 4
  const machine = buf.readUInt16LE(coff)
  const nsections = buf.readUInt16LE(coff + 2)
  const symtab = buf.readUInt32LE(coff + 8)
  const nsyms = buf.readUInt32LE(coff + 12)
  const optSize = buf.readUInt16LE(coff + 16)
  const characteristics = buf.readUInt16LE(coff + 18)
  const opt = coff + 20
  const magic = buf.readUInt16LE(opt)
  if (magic !== 0x20b) throw new Error('not PE32+')
  const subsystem = buf.readUInt16LE(opt + 68)
  const ndirs = buf.readUInt32LE(opt + 108)
  const dir = (i) => (i < ndirs ? { rva: buf.readUInt32LE(opt + 112 + i * 8), size: buf.readUInt32LE(opt + 116 + i * 8) } : { rva: 0, size: 0 })
  const sections = []
  for (let i = 0; i < nsections; i++) {
    const s = opt + optSize + i * 40
    sections.push({
      name: cstr(buf.subarray(s, s + 8), 0),
      vsize: buf.readUInt32LE(s + 8),
      va: buf.readUInt32LE(s + 12),
      rawSize: buf.readUInt32LE(s + 16),
      raw: buf.readUInt32LE(s + 20),
    })
  }
  const at = (rva) => {
    const s = sections.find((x) => rva >= x.va && rva < x.va + Math.max(x.vsize, x.rawSize))
    if (!s) throw new Error(`RVA 0x${rva.toString(16)} is in no section`)
    return rva - s.va + s.raw
  }
  const exports = []
  const ex = dir(0)
  if (ex.rva) {
    const e = at(ex.rva)
    const count = buf.readUInt32LE(e + 24)
    const names = at(buf.readUInt32LE(e + 32))
    for (let i = 0; i < count; i++) exports.push(cstr(buf, at(buf.readUInt32LE(names + i * 4))))
  }
  const needed = []
  const im = dir(1)
  if (im.rva) {
    for (let d = at(im.rva); ; d += 20) {
      const name = buf.readUInt32LE(d + 12)
      if (!name) break
      needed.push(cstr(buf, at(name)))
    }
  }
  return {
    format: 'pe',
    cpu: { 0x8664: 'x64', 0xaa64: 'arm64' }[machine] || `machine 0x${machine.toString(16)}`,
    type: characteristics & 0x2000 ? 'dll' : 'exe',
    subsystem: { 2: 'gui', 3: 'console' }[subsystem] || subsystem,
    needed,
    exports,
    // A COFF symbol table (and the .debug_* sections MinGW leaves) is what strip removes.
    stripped: symtab === 0 && nsyms === 0 && !sections.some((s) => s.name.startsWith('.debug') || s.name.startsWith('/')),
    sections: sections.map((s) => s.name),
  }
}

// ---- Mach-O (64-bit) -------------------------------------------------------

const CPU = { 0x01000007: 'x64', 0x0100000c: 'arm64' }

function macho(buf) {
  if (formatOf(buf) !== 'macho') throw new Error('not a 64-bit Mach-O file (a fat file?)')
  const cputype = buf.readUInt32LE(4)
  const filetype = buf.readUInt32LE(12)
  const ncmds = buf.readUInt32LE(16)
  const needed = []
  let minos = null
  let symtab = null
  let signature = null
  let id = null
  let off = 32
  for (let i = 0; i < ncmds; i++) {
    const cmd = buf.readUInt32LE(off)
    const size = buf.readUInt32LE(off + 4)
    if (cmd === 0x0c || cmd === 0x80000018 || cmd === 0x8000001f || cmd === 0x80000023) needed.push(cstr(buf, off + buf.readUInt32LE(off + 8)))
    else if (cmd === 0x0d) id = cstr(buf, off + buf.readUInt32LE(off + 8))
    else if (cmd === 0x32) minos = version(buf.readUInt32LE(off + 12))
    else if (cmd === 0x24 && !minos) minos = version(buf.readUInt32LE(off + 8))
    else if (cmd === 0x02) {
      symtab = { symoff: buf.readUInt32LE(off + 8), nsyms: buf.readUInt32LE(off + 12), stroff: buf.readUInt32LE(off + 16) }
    } else if (cmd === 0x1d) signature = { dataoff: buf.readUInt32LE(off + 8), datasize: buf.readUInt32LE(off + 12) }
    off += size
  }
  const exports = []
  let locals = 0
  if (symtab) {
    for (let i = 0; i < symtab.nsyms; i++) {
      const s = symtab.symoff + i * 16
      const type = buf[s + 4]
      if (type & 0xe0) continue // a debugging (stab) entry
      const name = cstr(buf, symtab.stroff + buf.readUInt32LE(s))
      const defined = (type & 0x0e) === 0x0e
      if (defined && type & 0x01) exports.push(name)
      else if (defined) locals++
    }
  }
  return {
    format: 'macho',
    cpu: CPU[cputype] || `cputype 0x${cputype.toString(16)}`,
    type: { 2: 'exec', 6: 'dylib' }[filetype] || `filetype ${filetype}`,
    needed,
    id,
    exports,
    locals,
    minos,
    signature: signature && checkSignature(buf, signature),
  }
}

function version(v) {
  return `${v >>> 16}.${(v >> 8) & 0xff}` + (v & 0xff ? `.${v & 0xff}` : '')
}

/**
 * The code signature's CodeDirectory, checked: every page hash matches the
 * file as it is (what the arm64 macOS kernel checks before running it; a
 * change after signing, a strip say, breaks it).
 * { adhoc, hashType, pages, mismatched }.
 */
function checkSignature(buf, { dataoff }) {
  const blob = buf.subarray(dataoff)
  if (blob.readUInt32BE(0) !== 0xfade0cc0) return { error: 'no embedded signature superblob' }
  const count = blob.readUInt32BE(8)
  for (let i = 0; i < count; i++) {
    const type = blob.readUInt32BE(12 + i * 8)
    const offset = blob.readUInt32BE(16 + i * 8)
    if (type !== 0) continue // CSSLOT_CODEDIRECTORY
    const cd = blob.subarray(offset)
    if (cd.readUInt32BE(0) !== 0xfade0c02) return { error: 'bad CodeDirectory magic' }
    const flags = cd.readUInt32BE(12)
    const hashOffset = cd.readUInt32BE(16)
    const nCodeSlots = cd.readUInt32BE(28)
    const codeLimit = cd.readUInt32BE(32)
    const hashSize = cd[36]
    const hashType = cd[37]
    const pageSize = 2 ** cd[39]
    const algo = { 1: 'sha1', 2: 'sha256' }[hashType]
    if (!algo) return { error: `hash type ${hashType}` }
    let mismatched = 0
    for (let p = 0; p < nCodeSlots; p++) {
      const start = p * pageSize
      const page = buf.subarray(start, Math.min(start + pageSize, codeLimit))
      const want = cd.subarray(hashOffset + p * hashSize, hashOffset + (p + 1) * hashSize)
      const got = crypto.createHash(algo).update(page).digest().subarray(0, hashSize)
      if (!got.equals(want)) mismatched++
    }
    return { adhoc: Boolean(flags & 0x2), hashType: algo, pages: nCodeSlots, codeLimit, mismatched, covers: codeLimit === dataoff }
  }
  return { error: 'no CodeDirectory' }
}

/** Reads `file` with the reader its first bytes call for. */
function read(file) {
  const buf = fs.readFileSync(file)
  const f = formatOf(buf)
  if (f === 'elf') return elf(buf)
  if (f === 'pe') return pe(buf)
  if (f === 'macho') return macho(buf)
  throw new Error(`${file}: not ELF, PE or 64-bit Mach-O`)
}

module.exports = { read, elf, pe, macho, maxGlibc, formatOf, compare }
