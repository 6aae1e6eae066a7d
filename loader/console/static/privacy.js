// The privacy desk's recovery, in the browser: the server returns only ciphertexts (from the
// audited pii.recover); the private key file and its passphrase are read here and never sent.
import * as openpgp from "/static/vendor/openpgp.min.mjs";

const $ = (id) => document.getElementById(id);

function say(text, isError) {
  const message = $("recover-message");
  message.textContent = text;
  message.classList.toggle("error", Boolean(isError));
}

function bytes(base64) {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

// `logins pii keygen`'s file: the secret key inside a passphrase-encrypted OpenPGP message
// (an older file may hold a key protected in place instead).
async function unlock(fileText, passphrase) {
  let message;
  try {
    message = await openpgp.readMessage({ armoredMessage: fileText });
  } catch {
    const key = await openpgp.readPrivateKey({ armoredKey: fileText });
    return openpgp.decryptKey({ privateKey: key, passphrase });
  }
  const { data } = await openpgp.decrypt({ message, passwords: [passphrase], format: "binary" });
  return openpgp.readPrivateKey({ binaryKey: data });
}

async function fetchSealed(what, value, reason) {
  const response = await fetch("/privacy/recover", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content,
    },
    body: JSON.stringify({ what, value, reason }),
    credentials: "same-origin",
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
  return answer;
}

async function decryptAll(sealed, key) {
  const dataKeys = {};
  for (const [id, wrapped] of Object.entries(sealed.data_keys)) {
    const message = await openpgp.readMessage({ binaryMessage: bytes(wrapped) });
    dataKeys[id] = (await openpgp.decrypt({ message, decryptionKeys: key })).data;
  }
  const values = [];
  for (const item of sealed.values) {
    const message = await openpgp.readMessage({ binaryMessage: bytes(item.ciphertext) });
    const { data } = await openpgp.decrypt({ message, passwords: [dataKeys[item.data_key]] });
    values.push({ kind: item.kind, mask: item.mask, value: data });
  }
  return values;
}

function show(values) {
  const table = $("recover-results");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const { kind, mask, value } of values) {
    const row = body.insertRow();
    for (const text of [kind, mask, value]) row.insertCell().textContent = text;
  }
  table.hidden = values.length === 0;
}

async function recover() {
  const what = $("recover-what").value;
  const value = $("recover-value").value.trim();
  const reason = $("recover-reason").value.trim();
  const file = $("recover-key").files[0];
  const passphrase = $("recover-passphrase").value;
  if (!value) return say("Give a user id or a mask to recover.", true);
  if (!reason) return say("Give a reason: it is recorded in the audit log.", true);
  if (!file) return say("Choose your private key file (the one `logins pii keygen` wrote).", true);
  if (!passphrase) return say("Type the private key's passphrase.", true);
  let key;
  try {
    key = await unlock(await file.text(), passphrase);
  } catch {
    return say("Wrong passphrase, or not a recovery private key file: nothing was asked of the server.", true);
  }
  say("Fetching the encrypted originals…");
  let sealed;
  try {
    sealed = await fetchSealed(what, value, reason);
  } catch (error) {
    return say(error.message, true);
  }
  try {
    const values = await decryptAll(sealed, key);
    show(values);
    const missing = sealed.missing ? `; ${sealed.missing} without a recoverable original (erased, or masked before a recovery key)` : "";
    say(`Recovered ${values.length} value(s)${missing}.`);
  } catch {
    show([]);
    say("This private key cannot decrypt these values: they were encrypted to another recovery key.", true);
  }
}

$("recover-button").addEventListener("click", () => {
  recover().catch(() => say("Recovery failed in the browser.", true));
});
