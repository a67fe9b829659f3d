// Directory group names as suggestions for the group and access editors:
// one <datalist> filled from GET /directory/groups (the last directory sync's
// groups and any set by hand). Typing any other name still works.

import { api } from './api.js';

const LIST_ID = 'directory-group-choices';

/** Fills the shared list once; without the right to read it, offers nothing. */
export async function loadDirectoryGroups() {
  let list = document.getElementById(LIST_ID);
  if (!list) {
    list = document.createElement('datalist');
    list.id = LIST_ID;
    document.body.append(list);
  }
  /** @type {string[]} */
  const names = await api('GET', '/api/v1/directory/groups').catch(() => []);
  list.replaceChildren(...names.map((n) => {
    const o = document.createElement('option');
    o.value = n;
    return o;
  }));
}

/**
 * Offers the directory's groups in `input` while `type` is a directory group.
 * @param {HTMLInputElement} input
 * @param {string} type
 * @returns {boolean} whether it now offers them
 */
export function offerDirectoryGroups(input, type) {
  if (type !== 'directory_group') return false;
  input.setAttribute('list', LIST_ID);
  return true;
}
