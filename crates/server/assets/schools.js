// The school switcher in the top bar, for a user who may act in more than
// one school (a trust-level administrator, granted schools by the server's
// operator). Switching asks the server for a session in the other school,
// which replaces this one, then reloads the page: what it shows and allows
// is the other school's.

import { api } from './api.js';

/**
 * Adds the switcher next to the school's name when the user has more than
 * one school; does nothing otherwise (or if the list cannot be read).
 * @param {(text: string) => void} notify shows a failed switch's reason
 */
export async function offerSchools(notify) {
  /** @type {{schools: {id: number, name: string, current: boolean, home: boolean}[]}} */
  let list;
  try {
    list = await api('GET', '/api/v1/me/schools');
  } catch {
    return;
  }
  if (!list || list.schools.length < 2) return;
  const heading = document.getElementById('school-name');
  if (!heading) return;
  const select = document.createElement('select');
  select.id = 'school-switch';
  select.className = 'school-switch';
  select.setAttribute('aria-label', 'School');
  // The user's own school, then those granted, each under its heading.
  for (const [label, home] of /** @type {[string, boolean][]} */ ([['Your school', true], ['Granted to you', false]])) {
    const group = document.createElement('optgroup');
    group.label = label;
    for (const s of list.schools.filter((x) => x.home === home)) {
      const o = document.createElement('option');
      o.value = String(s.id);
      o.textContent = s.name;
      o.selected = s.current;
      group.append(o);
    }
    if (group.childElementCount) select.append(group);
  }
  const current = String(list.schools.find((s) => s.current)?.id ?? '');
  select.addEventListener('change', async () => {
    select.disabled = true;
    try {
      await api('POST', '/api/v1/session/school', { school: Number(select.value) });
      location.reload();
    } catch (err) {
      select.value = current;
      select.disabled = false;
      notify(err instanceof Error ? err.message : String(err));
    }
  });
  heading.classList.add('visually-hidden');
  heading.after(select);
}
