// Proof of work for a waiting room that asks for it, off the main thread: find a solution such
// that SHA-256(nonce + ":" + solution) starts with `difficulty` zero bits.
self.onmessage = async (event: MessageEvent<{ nonce: string; difficulty: number }>) => {
  const { nonce, difficulty } = event.data;
  const encoder = new TextEncoder();
  for (let i = 0; ; i++) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(`${nonce}:${i}`)));
    if (leadingZeroBits(digest) >= difficulty) {
      self.postMessage({ solution: String(i) });
      return;
    }
  }
};

function leadingZeroBits(bytes: Uint8Array): number {
  let bits = 0;
  for (const b of bytes) {
    if (b === 0) {
      bits += 8;
      continue;
    }
    bits += Math.clz32(b) - 24;
    break;
  }
  return bits;
}
