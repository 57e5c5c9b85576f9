/**
 * @module tiers/pii
 * A cheap detector of personal data in prompt text, for tier rules that keep such requests on local
 * pools. It is a tripwire for the common, well-formed cases, not a data-loss-prevention product.
 *
 * Catches: email addresses; phone numbers written with a leading `+` and a country code (8–15
 * digits, separated by spaces, dots, dashes or parentheses) and North American numbers
 * (`555-123-4567`, `(555) 123-4567`, `555.123.4567`); payment card numbers of 13–19 digits starting
 * with 2–6, contiguous or grouped with single spaces or dashes, that pass the Luhn check; IBANs that
 * pass the ISO 7064 mod-97 check, with or without spaces; US social security numbers written
 * `123-45-6789` or `123 45 6789` (invalid area/group/serial numbers excluded); IPv4 addresses.
 *
 * Misses: names, street addresses, dates of birth, national ids other than the US SSN, phone numbers
 * in national formats outside North America (no leading `+`), numbers written in words or split by
 * other characters, and anything deliberately obfuscated. False positives: version strings shaped
 * like an address (`1.2.3.4`), and about one in ten runs of 3–6-digit numbers (a list of years, say)
 * that happen to pass Luhn.
 *
 * Every pattern is compiled once, and each asserts with a lookbehind that it starts at the beginning
 * of a token, so a scan stays linear in the text even for hostile input.
 */

/** The kind of personal data found. */
export type PiiKind = 'email' | 'phone' | 'card' | 'iban' | 'ssn' | 'ipv4';

const EMAIL = /(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/;
const PHONE_INTERNATIONAL = /(?<![\w+])\+\d(?:[ .()-]{0,2}\d){7,14}(?!\d)/;
const PHONE_NANP = /(?<![\w+(-])(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\w|[.-]\d)/;
const SSN = /(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])/;
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`(?<![\\w.])(?:${OCTET}\\.){3}${OCTET}(?!\\w|\\.\\d)`);
/** Digit groups joined by single spaces or dashes (not after `+`: a phone); cards are looked for inside. */
const DIGIT_RUN = /(?<![+\d])\d+(?:[ -]\d+)*/g;
const SEPARATOR = /[ -]/;
const IBAN =
  /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?(?![A-Za-z0-9])/g;

/** The first kind of personal data found in `text`, or null. */
export function detectPii(text: string): PiiKind | null {
  if (text.includes('@') && EMAIL.test(text)) return 'email';
  if (hasCardNumber(text)) return 'card';
  if (hasIban(text)) return 'iban';
  if (SSN.test(text)) return 'ssn';
  if (PHONE_INTERNATIONAL.test(text) || PHONE_NANP.test(text)) return 'phone';
  if (IPV4.test(text)) return 'ipv4';
  return null;
}

/** Whether the Luhn checksum of a digit string holds. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = digits.length - 1, double = false; i >= 0; i--, double = !double) {
    let d = digits.charCodeAt(i) - 48;
    if (double) d = d > 4 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

/** Whether an IBAN (spaces removed, any case) passes the ISO 7064 mod-97 check. */
export function ibanValid(iban: string): boolean {
  const s = iban.toUpperCase();
  if (s.length < 15 || s.length > 34) return false;
  let rest = 0;
  // Country code and check digits move to the end; letters count as 10..35, folded in digit by digit.
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt((k + 4) % s.length);
    rest = c >= 65 ? (rest * 100 + c - 55) % 97 : (rest * 10 + c - 48) % 97;
  }
  return rest === 1;
}

/**
 * Card numbers inside digit runs. A run written in groups ("4111 1111 1111 1111 12/25") is tried
 * at every window of whole groups holding 13–19 digits, so a neighbouring number does not hide a
 * card; a run without separators must be a card number as a whole. Printed cards group their
 * digits by 3 to 6, so a window never spans a shorter or longer group: lists of small numbers
 * ("3 5 2 6 4 …") would otherwise pass Luhn one window in ten.
 */
function hasCardNumber(text: string): boolean {
  DIGIT_RUN.lastIndex = 0;
  for (let m = DIGIT_RUN.exec(text); m !== null; m = DIGIT_RUN.exec(text)) {
    if (m[0].length < 13) continue;
    const groups = m[0].split(SEPARATOR);
    if (groups.length === 1) {
      if (isCardNumber(m[0])) return true;
      continue;
    }
    for (let first = 0; first < groups.length; first++) {
      let digits = '';
      for (let last = first; last < groups.length && digits.length < 19; last++) {
        const group = groups[last]!;
        if (group.length < 3 || group.length > 6) break;
        digits += group;
        if (isCardNumber(digits)) return true;
      }
    }
  }
  return false;
}

function isCardNumber(digits: string): boolean {
  const lead = digits.charCodeAt(0);
  return (
    digits.length >= 13 &&
    digits.length <= 19 &&
    lead >= 50 /* 2 */ &&
    lead <= 54 /* 6 */ &&
    luhnValid(digits)
  );
}

function hasIban(text: string): boolean {
  IBAN.lastIndex = 0;
  for (let m = IBAN.exec(text); m !== null; m = IBAN.exec(text)) {
    if (ibanValid(m[0].replaceAll(' ', ''))) return true;
  }
  return false;
}
