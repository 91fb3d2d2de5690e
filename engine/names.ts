// Generated container names, docker style: adjective_surname. A name is
// [a-zA-Z0-9][a-zA-Z0-9_.-]+, as docker requires.

import * as crypto from 'node:crypto';

const ADJECTIVES = [
  'admiring', 'bold', 'brave', 'busy', 'calm', 'clever', 'cool', 'dazzling', 'eager', 'ecstatic',
  'elegant', 'epic', 'fervent', 'focused', 'friendly', 'gallant', 'gifted', 'happy', 'hopeful', 'jolly',
  'keen', 'kind', 'laughing', 'loving', 'lucid', 'magical', 'modest', 'nice', 'nifty', 'optimistic',
  'peaceful', 'practical', 'quirky', 'relaxed', 'serene', 'sharp', 'stoic', 'sweet', 'tender', 'trusting',
  'upbeat', 'vibrant', 'vigilant', 'wizardly', 'wonderful', 'youthful', 'zealous', 'zen',
];

const SURNAMES = [
  'babbage', 'bell', 'boole', 'cerf', 'curie', 'darwin', 'dijkstra', 'einstein', 'euler', 'faraday',
  'fermat', 'feynman', 'galileo', 'gauss', 'hamilton', 'hopper', 'hypatia', 'johnson', 'kepler', 'knuth',
  'lamport', 'liskov', 'lovelace', 'maxwell', 'mccarthy', 'meitner', 'newton', 'noether', 'pascal', 'pike',
  'ritchie', 'shannon', 'sinoussi', 'tesla', 'thompson', 'torvalds', 'turing', 'wozniak', 'wright', 'yonath',
];

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function validName(name: string): boolean {
  return NAME_RE.test(name) && name.length <= 128;
}

/** A random adjective_surname; `taken` says which are in use (then a digit is added, as docker does). */
export function generateName(taken: (name: string) => boolean): string {
  for (let attempt = 0; ; attempt++) {
    const a = ADJECTIVES[crypto.randomInt(ADJECTIVES.length)]!;
    const s = SURNAMES[crypto.randomInt(SURNAMES.length)]!;
    const name = attempt < 10 ? `${a}_${s}` : `${a}_${s}${crypto.randomInt(10)}`;
    if (!taken(name)) return name;
  }
}

export function newId(): string {
  return crypto.randomBytes(32).toString('hex');
}
