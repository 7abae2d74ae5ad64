// Ids for translated answers: the prefix each API uses, then 24 random hex digits.
import { randomBytes } from 'node:crypto';

export const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString('hex')}`;
