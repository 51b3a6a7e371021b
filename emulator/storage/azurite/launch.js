#!/usr/bin/env node
// Starts Azurite's blob service with storage accounts read from a registry file the local Azure writes.
//
// Why: Azurite knows accounts only from the AZURITE_ACCOUNTS environment variable, read at start and
// every 60 s after (src/common/AccountDataStore.ts). The local Azure creates storage accounts at run
// time and a new account must work at once, so before Azurite starts this replaces the account lookup
// with one that re-reads the file named by LOCAL_AZURE_ACCOUNTS_FILE whenever it changed (its mtime,
// size or inode: the emulator replaces it atomically). The file has AZURITE_ACCOUNTS' format,
// `name:key1:key2;...`; an empty or missing file means no accounts (not Azurite's well-known
// devstoreaccount1). Every other argument goes to Azurite unchanged.
"use strict";

const fs = require("fs");
const AccountDataStore = require("azurite/dist/src/common/AccountDataStore").default;

const file = process.env.LOCAL_AZURE_ACCOUNTS_FILE;
if (!file) {
  console.error("launch.js: LOCAL_AZURE_ACCOUNTS_FILE must name the accounts registry file");
  process.exit(2);
}

let seen = null; // "mtime:size:inode" of the file last read
let accounts = {};

function current() {
  let stamp = "missing";
  try {
    const st = fs.statSync(file, { bigint: true });
    stamp = `${st.mtimeNs}:${st.size}:${st.ino}`;
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
  }
  if (stamp !== seen) {
    const text = stamp === "missing" ? "" : fs.readFileSync(file, "utf8").trim();
    accounts = text ? AccountDataStore.prototype.parserAccountsEnvironmentString.call(null, text) : {};
    seen = stamp;
  }
  return accounts;
}

AccountDataStore.prototype.refresh = function refresh() {
  this.accounts = current();
};
AccountDataStore.prototype.getAccount = function getAccount(name) {
  this.accounts = current();
  return Object.prototype.hasOwnProperty.call(this.accounts, name) ? this.accounts[name] : undefined;
};

require("azurite/dist/src/blob/main.js");
